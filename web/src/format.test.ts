import { describe, expect, it } from "vitest";
import { parseTags, showValue, withNames } from "./format";

describe("format", () => {
  it("reads tags from comma-separated text, once each", () => {
    expect(parseTags(" ops, weekly,,ops ")).toEqual(["ops", "weekly"]);
  });

  it("shows history values for people", () => {
    const names = (id: string) => ({ "01HZX7Q3V5W8Y9A2B4C6D8E0F1": "Check the backups" })[id];
    expect(showValue(null)).toBe("none");
    expect(showValue(["01HZX7Q3V5W8Y9A2B4C6D8E0F1"], names)).toBe("Check the backups");
    expect(showValue({ kind: "rate", every: 2, unit: "hours" })).toBe("every 2 hours");
    expect(showValue("in_progress")).toBe("in progress");
  });

  it("names the ids in an error message it knows", () => {
    const names = (id: string) => (id === "01HZX7Q3V5W8Y9A2B4C6D8E0F1" ? "Backups" : undefined);
    expect(withNames("depends_on.01HZX7Q3V5W8Y9A2B4C6D8E0F1: not completed", names)).toBe(
      "depends_on.“Backups”: not completed",
    );
  });
});
