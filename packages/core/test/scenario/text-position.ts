/** "file:line:col" of the first occurrence of `token` in `text` (1-based, as editors show it). */
export function at(file: string, text: string, token: string): string {
  const i = text.indexOf(token);
  if (i < 0) throw new Error(`token ${token} not in text`);
  const before = text.slice(0, i).split("\n");
  return `${file}:${before.length}:${before[before.length - 1]!.length + 1}`;
}
