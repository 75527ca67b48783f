// A workflow drawn as its graph: steps in layers by dependency depth (left to right), ordered
// within a layer to keep edges short, edges as curves from a step to the steps that need it.

export interface StepLike {
  key: string;
  depends_on: string[];
}

export interface PlacedNode<S extends StepLike> {
  step: S;
  layer: number;
  row: number;
  x: number;
  y: number;
}

export interface PlacedEdge {
  from: string;
  to: string;
  path: string;
}

export interface GraphLayout<S extends StepLike> {
  nodes: PlacedNode<S>[];
  edges: PlacedEdge[];
  width: number;
  height: number;
}

export const NODE_WIDTH = 172;
export const NODE_HEIGHT = 56;
const GAP_X = 56;
const GAP_Y = 20;
const PAD = 12;

/** Each step's layer: 0 without dependencies, else one more than its deepest dependency.
 * Unknown keys are ignored and a cycle (which the API refuses) cannot loop forever. */
export function layers<S extends StepLike>(steps: S[]): Map<string, number> {
  const byKey = new Map(steps.map((step) => [step.key, step]));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const visit = (key: string): number => {
    const known = depth.get(key);
    if (known !== undefined) return known;
    if (visiting.has(key)) return 0;
    visiting.add(key);
    const step = byKey.get(key);
    let value = 0;
    for (const dependency of step?.depends_on ?? []) {
      if (byKey.has(dependency)) value = Math.max(value, visit(dependency) + 1);
    }
    visiting.delete(key);
    depth.set(key, value);
    return value;
  };
  steps.forEach((step) => visit(step.key));
  return depth;
}

export function layout<S extends StepLike>(steps: S[]): GraphLayout<S> {
  const depth = layers(steps);
  const columns: S[][] = [];
  steps.forEach((step) => {
    const layer = depth.get(step.key) ?? 0;
    (columns[layer] ??= []).push(step);
  });
  // Order each column by the mean row of its dependencies (barycentre), stable otherwise.
  const row = new Map<string, number>();
  columns.forEach((column, layer) => {
    if (layer > 0) {
      const weight = (step: S) => {
        const rows = step.depends_on.map((key) => row.get(key)).filter((r): r is number => r !== undefined);
        return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : Number.MAX_SAFE_INTEGER;
      };
      const order = new Map(column.map((step, index) => [step.key, index]));
      column.sort((a, b) => weight(a) - weight(b) || order.get(a.key)! - order.get(b.key)!);
    }
    column.forEach((step, index) => row.set(step.key, index));
  });
  const tallest = Math.max(1, ...columns.map((column) => column?.length ?? 0));
  const height = PAD * 2 + tallest * NODE_HEIGHT + (tallest - 1) * GAP_Y;
  const width = PAD * 2 + Math.max(1, columns.length) * NODE_WIDTH + Math.max(0, columns.length - 1) * GAP_X;
  const nodes: PlacedNode<S>[] = [];
  const position = new Map<string, PlacedNode<S>>();
  columns.forEach((column, layer) => {
    const columnHeight = column.length * NODE_HEIGHT + (column.length - 1) * GAP_Y;
    const top = (height - columnHeight) / 2;
    column.forEach((step, index) => {
      const node = {
        step,
        layer,
        row: index,
        x: PAD + layer * (NODE_WIDTH + GAP_X),
        y: top + index * (NODE_HEIGHT + GAP_Y),
      };
      nodes.push(node);
      position.set(step.key, node);
    });
  });
  const edges: PlacedEdge[] = [];
  for (const node of nodes) {
    for (const dependency of node.step.depends_on) {
      const source = position.get(dependency);
      if (!source) continue;
      const x1 = source.x + NODE_WIDTH;
      const y1 = source.y + NODE_HEIGHT / 2;
      const x2 = node.x;
      const y2 = node.y + NODE_HEIGHT / 2;
      const bend = Math.max(24, (x2 - x1) / 2);
      edges.push({
        from: dependency,
        to: node.step.key,
        path: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`,
      });
    }
  }
  return { nodes, edges, width, height };
}
