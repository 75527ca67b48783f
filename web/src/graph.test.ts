import { describe, expect, it } from "vitest";
import { layers, layout, NODE_HEIGHT, NODE_WIDTH } from "./graph";

const step = (key: string, ...depends_on: string[]) => ({ key, depends_on });

describe("layers", () => {
  it("puts each step one layer after its deepest dependency", () => {
    const depth = layers([step("d", "b", "c"), step("a"), step("b", "a"), step("c", "a"), step("e", "a", "d")]);
    expect(Object.fromEntries(depth)).toEqual({ a: 0, b: 1, c: 1, d: 2, e: 3 });
  });

  it("ignores unknown keys and does not loop on a cycle", () => {
    const depth = layers([step("a", "missing"), step("x", "y"), step("y", "x")]);
    expect(depth.get("a")).toBe(0);
    expect(depth.has("x") && depth.has("y")).toBe(true);
  });
});

describe("layout", () => {
  it("places layers left to right without overlaps, and draws one edge per dependency", () => {
    const graph = layout([step("a"), step("b", "a"), step("c", "a"), step("d", "b", "c")]);
    const at = Object.fromEntries(graph.nodes.map((node) => [node.step.key, node]));
    expect(at.a.x).toBeLessThan(at.b.x);
    expect(at.b.x).toBe(at.c.x);
    expect(at.d.x).toBeGreaterThan(at.b.x);
    expect(Math.abs(at.b.y - at.c.y)).toBeGreaterThanOrEqual(NODE_HEIGHT);
    expect(graph.edges.map((edge) => `${edge.from}>${edge.to}`).sort()).toEqual(["a>b", "a>c", "b>d", "c>d"]);
    for (const node of graph.nodes) {
      expect(node.x + NODE_WIDTH).toBeLessThanOrEqual(graph.width);
      expect(node.y + NODE_HEIGHT).toBeLessThanOrEqual(graph.height);
    }
    // An edge starts at the right side of its source and ends at the left side of its target.
    const ab = graph.edges.find((edge) => edge.to === "b")!;
    expect(ab.path.startsWith(`M${at.a.x + NODE_WIDTH},`)).toBe(true);
    expect(ab.path.endsWith(`${at.b.x},${at.b.y + NODE_HEIGHT / 2}`)).toBe(true);
  });

  it("orders a layer by its dependencies' rows, so edges do not cross needlessly", () => {
    const graph = layout([step("top"), step("bottom"), step("after-bottom", "bottom"), step("after-top", "top")]);
    const row = Object.fromEntries(graph.nodes.map((node) => [node.step.key, node.row]));
    expect(row["after-top"]).toBe(row.top);
    expect(row["after-bottom"]).toBe(row.bottom);
  });

  it("draws an empty workflow as an empty canvas", () => {
    const graph = layout([]);
    expect(graph.nodes).toEqual([]);
    expect(graph.width).toBeGreaterThan(0);
  });
});
