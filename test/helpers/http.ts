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
    send: <T = Record<string, unknown>>(method: string, path: string, o?: Parameters<typeof call>[3]) =>
      call<T>(base(), method, path, o),
  };
}

let counter = 0;
/** A registration body that no other call in this process has used. */
export function newUser(
  overrides: Partial<{ email: string; username: string; password: string; fullName: string }> = {},
) {
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

/** The administrator the test apps that need one are started with (ADMIN_EMAIL / ADMIN_PASSWORD). */
export const TEST_ADMIN = { email: 'admin@toko.test', password: 'admin-password-1' };
export const TEST_ADMIN_ENV = { ADMIN_EMAIL: TEST_ADMIN.email, ADMIN_PASSWORD: TEST_ADMIN.password };

/** A product added through the public API by the administrator (who logs in at `loginAt` when the user module lives elsewhere); returns its id. */
export async function createProduct(
  base: string,
  fields: { stock: number; name?: string; price?: number },
  loginAt = base,
): Promise<string> {
  const login = await call(loginAt, 'POST', '/api/v1/users/login', { body: TEST_ADMIN });
  if (login.status !== 200) throw new Error(`admin login answered ${login.status}: start the app with TEST_ADMIN_ENV`);
  const res = await call(base, 'POST', '/api/v1/products', {
    token: login.body.accessToken as string,
    body: { name: 'Kopi', price: 1000, category: 'uji', ...fields },
  });
  if (res.status !== 201) throw new Error(`product answered ${res.status}: ${res.text}`);
  return res.body.id as string;
}

/** A customer registered through the public API. */
export async function registerCustomer(base: string): Promise<{ id: string; email: string; password: string }> {
  const u = newUser();
  const res = await call(base, 'POST', '/api/v1/users/register', { body: u });
  if (res.status !== 201) throw new Error(`register answered ${res.status}: ${res.text}`);
  return { id: res.body.id as string, email: u.email, password: u.password };
}

/** What a page or asset would load from another origin: `src` URLs, stylesheet links, CSS url()/@import (plain links to follow are fine). */
export function loadsFromOutside(text: string): string[] {
  const outside = /(?:\bsrc\s*[:=]\s*["']|<link[^>]+href=["']|url\(\s*["']?|@import\s+["'])(https?:)?\/\/[^"')\s]+/g;
  return [...text.matchAll(outside)].map((m) => m[0]);
}
