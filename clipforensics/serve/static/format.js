// Numbers, sizes, colours and rows in words and text.

/** Decimals a number other than a score is shown with (a model's recorded metrics, limits). */
const DECIMALS = 3;

export function isScore(value) {
  return typeof value === "number" && Number.isFinite(value);
}

/** A score (p_fake, a threshold) as the drawn boxes show it: two decimals. */
export function formatNumber(value) {
  return isScore(value) ? value.toFixed(2) : "—";
}

/** Any value in words: a whole number as it is, another number rounded to `DECIMALS` (the rows and downloads
 * keep every digit). */
export function formatValue(value) {
  if (typeof value !== "number" || Number.isInteger(value)) return String(value);
  return String(Number(value.toFixed(DECIMALS)));
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

/** The rows as CSV with `columns` (the server's, GET /v1/schema; RFC 4180 quoting; an empty cell for null). */
export function csvText(rows, columns) {
  const cell = (value) => {
    if (value === null || value === undefined) return "";
    const text = typeof value === "object" ? JSON.stringify(value) : String(value);
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  const lines = [columns.join(","), ...rows.map((row) => columns.map((column) => cell(row[column])).join(","))];
  return `${lines.join("\r\n")}\r\n`;
}
