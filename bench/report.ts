/** Tables on stdout, one row at a time, as the bench goes. */
export function table(title: string, columns: { name: string; width: number; left?: boolean }[]) {
  process.stdout.write(
    `\n${title}\n${columns.map((c) => (c.left ? c.name.padEnd(c.width) : c.name.padStart(c.width))).join(' ')}\n`,
  );
  return (values: (string | number | undefined)[]) =>
    process.stdout.write(
      `${columns
        .map((c, i) => {
          const v = values[i];
          const s =
            v === undefined ? '—' : typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : v;
          return c.left ? s.padEnd(c.width) : s.padStart(c.width);
        })
        .join(' ')}\n`,
    );
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** a / b rounded to two decimals, or undefined when either is missing. */
export const ratio = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || !b ? undefined : Math.round((a / b) * 100) / 100;

/** The columns every load run prints after its rate. */
export const LOAD_COLUMNS = [
  { name: 'p50 ms', width: 7 },
  { name: 'p99 ms', width: 7 },
  { name: 'err', width: 5 },
  { name: 'non2xx', width: 7 },
];
