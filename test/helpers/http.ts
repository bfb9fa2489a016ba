export interface Res<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** A small fetch wrapper: JSON in and out, never throws on a status. */
export async function call<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  opts: { body?: unknown; token?: string; headers?: Record<string, string>; raw?: string } = {},
): Promise<Res<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined = opts.raw;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON; keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

export function api(base: () => string) {
  return {
    get: <T = Record<string, unknown>>(path: string, o?: Parameters<typeof call>[3]) => call<T>(base(), 'GET', path, o),
    post: <T = Record<string, unknown>>(path: string, body?: unknown, o?: Parameters<typeof call>[3]) =>
      call<T>(base(), 'POST', path, { ...o, body }),
    send: <T = Record<string, unknown>>(method: string, path: string, o?: Parameters<typeof call>[3]) => call<T>(base(), method, path, o),
  };
}

let counter = 0;
/** A registration body that no other call in this process has used. */
export function newUser(overrides: Partial<{ email: string; username: string; password: string; fullName: string }> = {}) {
  counter += 1;
  const tag = `${process.pid}${counter}${Math.floor(Math.random() * 1e6)}`;
  return {
    email: `user${tag}@example.co.id`,
    username: `user_${tag}`.slice(0, 32),
    password: 'rahasia-sekali',
    fullName: 'Budi Santoso',
    ...overrides,
  };
}
