// Numbers, sizes, colours and rows in words and text.

/** The summary columns of `clipforensics detect --output x.csv`. */
export const CSV_COLUMNS = ["path", "p_fake", "label", "kind", "faces", "frames", "frames_with_faces",
  "frames_without_faces", "error", "note"];

export function isScore(value) {
  return typeof value === "number" && Number.isFinite(value);
}

export function formatNumber(value) {
  return isScore(value) ? value.toFixed(2) : "—";
}

export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return String(bytes);
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes, unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
  return `${unit ? value.toFixed(value < 10 ? 1 : 0) : value} ${units[unit]}`;
}

export function plural(count, word) {
  return count === 1 ? word : `${word}s`;
}

/** "red", "green" or "blue" for a `#rrggbb` colour where one channel leads, else the colour itself. */
export function colourName(hex) {
  const match = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!match) return hex;
  const [r, g, b] = match.slice(1).map((part) => Number.parseInt(part, 16));
  if (r > g && r > b) return "red";
  if (g > r && g > b) return "green";
  if (b > r && b > g) return "blue";
  return hex;
}

/** The rows as CSV with the summary columns (RFC 4180 quoting; an empty cell for null). */
export function csvText(rows) {
  const cell = (value) => {
    if (value === null || value === undefined) return "";
    const text = typeof value === "object" ? JSON.stringify(value) : String(value);
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  const lines = [CSV_COLUMNS.join(","), ...rows.map((row) => CSV_COLUMNS.map((column) => cell(row[column])).join(","))];
  return `${lines.join("\r\n")}\r\n`;
}
