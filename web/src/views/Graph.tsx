import { layout, NODE_HEIGHT, NODE_WIDTH } from "../graph";
import { label } from "../format";

export interface GraphStep {
  key: string;
  depends_on: string[];
  title: string;
  status: string | null; // null: not run
}

/** A workflow as its graph: steps as boxes coloured (and labelled) by status, edges from each
 * dependency to the steps that wait for it. A table beside it says the same in text. */
export function WorkflowGraph({ steps, caption }: { steps: GraphStep[]; caption: string }) {
  const { nodes, edges, width, height } = layout(steps);
  const summary = steps.map((s) => `${s.key}: ${s.status ? label(s.status) : "not run"}`).join(", ");
  return (
    <figure className="graph">
      <div className="graph-scroll">
        <svg
          viewBox={`0 0 ${width} ${height}`}
          width={width}
          height={height}
          role="img"
          aria-label={`${caption}. ${summary}`}
          data-testid="workflow-graph"
        >
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M 0 0 L 10 5 L 0 10 z" className="graph-arrow" />
            </marker>
          </defs>
          {edges.map((edge) => (
            <path key={`${edge.from}-${edge.to}`} d={edge.path} className="graph-edge" markerEnd="url(#arrow)" />
          ))}
          {nodes.map(({ step, x, y }) => (
            <g
              key={step.key}
              transform={`translate(${x},${y})`}
              className={`graph-node status-${step.status ?? "none"}`}
              data-step={step.key}
              data-status={step.status ?? "none"}
            >
              <rect width={NODE_WIDTH} height={NODE_HEIGHT} rx={8} />
              <text x={12} y={22} className="graph-title">
                {truncate(step.title, 20)}
              </text>
              <text x={12} y={42} className="graph-status">
                {step.key} · {step.status ? label(step.status) : "not run"}
              </text>
            </g>
          ))}
        </svg>
      </div>
      <figcaption className="muted small">{caption}</figcaption>
    </figure>
  );
}

function truncate(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}
