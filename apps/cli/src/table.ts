/**
 * Tables for the CLI's human output, kept within 100 columns: a table that is too wide first wraps
 * its wordy columns (descriptions, operand lists); when that is not enough it is split into parts
 * that each repeat the key columns (the row labels), like a wide matrix printed page by page.
 */
import Table from "cli-table3";

export const MAX_TABLE_WIDTH = 100;

export interface TableSpec {
  readonly head: readonly string[];
  readonly rows: readonly (readonly string[])[];
  /** Leading columns that label a row; a split table repeats them in every part. Default 1. */
  readonly keyColumns?: number;
  /** Default MAX_TABLE_WIDTH. */
  readonly maxWidth?: number;
  /** A rule between body rows (default: none, the table stays as tall as its content). */
  readonly rowRules?: boolean;
}

const ANSI = /\u001b\[[0-9;]*m/g;

/** Columns a string occupies on a terminal (escape sequences take none). */
export const visibleWidth = (s: string): number => Math.max(0, ...s.replace(ANSI, "").split("\n").map((l) => [...l].length));

/** The longest word: a column cannot wrap narrower than this. */
const longestWord = (s: string): number => Math.max(0, ...s.replace(ANSI, "").split(/\s+/).map((w) => [...w].length));

/** Borders: "│ a │ b │" is width + 2 padding per column, plus one rule per column and one more. */
const tableWidth = (widths: readonly number[]): number => widths.reduce((n, w) => n + w + 3, 1);

const NO_ROW_RULES = { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" };

function draw(head: readonly string[], rows: readonly (readonly string[])[], widths: readonly number[] | undefined, rowRules: boolean): string {
  const t = new Table({
    head: [...head],
    style: { head: [], border: [] },
    ...(rowRules ? {} : { chars: NO_ROW_RULES }),
    ...(widths ? { colWidths: widths.map((w) => w + 2), wordWrap: true, wrapOnWordBoundary: true } : {}),
  });
  for (const r of rows) t.push([...r]);
  return t.toString();
}

/**
 * Column widths that fit `max` by wrapping the wordy columns (narrowing the widest first, never below
 * its longest word or 10), or undefined when wrapping cannot make the table fit.
 */
/** The narrowest each column may wrap to: its longest word, and not below 10 unless it is narrower. */
const floorWidths = (cells: readonly (readonly string[])[], natural: readonly number[]): number[] =>
  natural.map((n, c) => Math.min(n, Math.max(10, ...cells.map((r) => longestWord(r[c] ?? "")))));

function wrappedWidths(cells: readonly (readonly string[])[], natural: readonly number[], max: number): number[] | undefined {
  const floor = floorWidths(cells, natural);
  const widths = [...natural];
  while (tableWidth(widths) > max) {
    let widest = -1;
    for (let c = 0; c < widths.length; c++) if (widths[c]! > floor[c]! && (widest < 0 || widths[c]! > widths[widest]!)) widest = c;
    if (widest < 0) return undefined;
    widths[widest] = Math.max(floor[widest]!, widths[widest]! - (tableWidth(widths) - max));
  }
  return widths;
}

/** Renders the table within `maxWidth` columns (wrapping, else splitting); parts are separated by a blank line. */
export function renderTable(spec: TableSpec): string {
  const max = spec.maxWidth ?? MAX_TABLE_WIDTH;
  const rowRules = spec.rowRules ?? false;
  const cells = [spec.head, ...spec.rows];
  const natural = spec.head.map((_, c) => Math.max(...cells.map((r) => visibleWidth(r[c] ?? ""))));
  if (tableWidth(natural) <= max) return draw(spec.head, spec.rows, undefined, rowRules);
  const wrapped = wrappedWidths(cells, natural, max);
  if (wrapped) return draw(spec.head, spec.rows, wrapped, rowRules);

  // Split: the key columns (wrapped as far as they go), then as many of the others as fit wrapped,
  // part after part; each part is then drawn as wide as it may be.
  const keys = Math.min(spec.keyColumns ?? 1, spec.head.length - 1);
  const keyIdx = Array.from({ length: keys }, (_, c) => c);
  const floor = floorWidths(cells, natural);
  const parts: number[][] = [];
  let current: number[] = [];
  for (let c = keys; c < spec.head.length; c++) {
    const trial = [...keyIdx, ...current, c].map((i) => floor[i]!);
    if (current.length > 0 && tableWidth(trial) > max) {
      parts.push(current);
      current = [];
    }
    current.push(c);
  }
  if (current.length > 0) parts.push(current);
  return parts
    .map((part) => {
      const cols = [...keyIdx, ...part];
      const pick = (r: readonly string[]) => cols.map((c) => r[c] ?? "");
      const partCells = cells.map(pick);
      const widths = cols.map((c) => natural[c]!);
      const fitted = tableWidth(widths) <= max ? undefined : wrappedWidths(partCells, widths, max);
      return draw(pick(spec.head), spec.rows.map(pick), fitted, rowRules);
    })
    .join("\n\n");
}
