/**
 * Errors that are part of toko's behaviour, as opposed to bugs.
 *
 * Every class has a stable namespaced `code` (`USER.NOT_FOUND`) that becomes
 * the problem document's `type`, and an HTTP status. One middleware maps them
 * to `application/problem+json`; nothing else rewrites statuses.
 */
import { z } from 'zod';

/** A problem document's `type` is this followed by its code: `urn:toko:problem:USER.NOT_FOUND`. */
export const PROBLEM_TYPE_PREFIX = 'urn:toko:problem:';

export type ErrorExtras = Record<string, unknown>;

/** The extension fields a problem code carries beside the standard ones, with an example (`.meta({ example })`), for the API document. */
export type ExtrasSchema = z.ZodObject;

export interface AppErrorInit {
  code: string;
  status: number;
  title: string;
  detail: string;
  extras?: ErrorExtras;
  headers?: Record<string, string>;
}

export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly title: string;
  readonly extras: ErrorExtras;
  readonly headers: Record<string, string>;

  constructor(init: AppErrorInit) {
    super(init.detail);
    this.name = new.target.name;
    this.code = init.code;
    this.status = init.status;
    this.title = init.title;
    this.extras = init.extras ?? {};
    this.headers = init.headers ?? {};
  }
}

/** The shape every typed error class shares, so transports can rebuild one from a problem document and the API document can describe it. */
export interface ErrorClass<E extends AppError = AppError> {
  new (detail: string, extras?: ErrorExtras): E;
  readonly code: string;
  readonly status: number;
  readonly title: string;
  /** Extension fields of its problem documents, when it has any. */
  readonly extras?: ExtrasSchema;
}

/**
 * Declares a typed error class: `export class UserNotFound extends defineError('USER.NOT_FOUND', 404, 'User not found') {}`.
 * `extras` declares the extension fields its problem documents carry (`{ field }`, `{ orderId, items }`).
 */
export function defineError(code: string, status: number, title: string, extras?: ExtrasSchema) {
  return class extends AppError {
    static readonly code = code;
    static readonly status = status;
    static readonly title = title;
    static readonly extras = extras;
    constructor(detail: string = title, extras?: ErrorExtras) {
      super({ code, status, title, detail, extras });
    }
  };
}

export interface FieldError {
  path: string;
  message: string;
}

export class ValidationFailed extends AppError {
  static readonly code = 'REQUEST.VALIDATION_FAILED';
  static readonly status = 422;
  static readonly title = 'Validation failed';
  static readonly extras = z
    .object({
      errors: z
        .array(z.object({ path: z.string(), message: z.string() }))
        .meta({ description: 'One entry per bad field; `path` is dotted (`items.0.quantity`)' }),
    })
    .meta({ example: { errors: [{ path: 'email', message: 'Must be an e-mail address' }] } });
  readonly errors: FieldError[];
  constructor(detail: string = 'The request is not valid', extras?: ErrorExtras) {
    const errors = (extras?.errors as FieldError[] | undefined) ?? [];
    super({ code: ValidationFailed.code, status: 422, title: 'Validation failed', detail, extras: { errors } });
    this.errors = errors;
  }
}

export class Unauthorized extends AppError {
  static readonly code = 'AUTH.UNAUTHORIZED';
  static readonly status = 401;
  static readonly title = 'Unauthorized';
  constructor(detail: string = 'A valid bearer token is required', extras?: ErrorExtras) {
    super({
      code: Unauthorized.code,
      status: 401,
      title: 'Unauthorized',
      detail,
      extras,
      headers: { 'WWW-Authenticate': 'Bearer realm="toko"' },
    });
  }
}

export class Forbidden extends defineError('AUTH.FORBIDDEN', 403, 'Forbidden') {}
export class NotFound extends defineError('HTTP.NOT_FOUND', 404, 'Not found') {}
export class MethodNotAllowed extends defineError('HTTP.METHOD_NOT_ALLOWED', 405, 'Method not allowed') {}
export class MalformedJson extends defineError('REQUEST.MALFORMED_JSON', 400, 'Malformed JSON') {}
export class PayloadTooLarge extends defineError('REQUEST.TOO_LARGE', 413, 'Payload too large') {}
export class UnsupportedMediaType extends defineError(
  'REQUEST.UNSUPPORTED_MEDIA_TYPE',
  415,
  'Unsupported media type',
) {}

/** `extras.retryAfterSeconds` (whole seconds, at least 1) as both the extra and the Retry-After header. */
function retryAfter(extras: ErrorExtras | undefined, fallback: number) {
  const seconds = Math.max(1, Math.ceil(Number(extras?.retryAfterSeconds ?? fallback)));
  return { extras: { ...extras, retryAfterSeconds: seconds }, headers: { 'Retry-After': String(seconds) } };
}

export class TooManyRequests extends AppError {
  static readonly code = 'REQUEST.TOO_MANY';
  static readonly status = 429;
  static readonly title = 'Too many requests';
  static readonly extras = z
    .object({ retryAfterSeconds: z.number().int().min(1).meta({ description: 'Also the Retry-After header' }) })
    .meta({ example: { retryAfterSeconds: 30 } });
  constructor(detail: string = 'Too many requests', extras?: ErrorExtras) {
    super({ code: TooManyRequests.code, status: 429, title: 'Too many requests', detail, ...retryAfter(extras, 1) });
  }
}

/** 503 with Retry-After (`retryAfterSeconds`, default 5): a dependency is down; the same request may succeed later. */
export class ServiceUnavailable extends AppError {
  static readonly code = 'SERVICE.UNAVAILABLE';
  static readonly status = 503;
  static readonly title = 'Service unavailable';
  static readonly extras = z
    .object({
      retryAfterSeconds: z.number().int().min(1).meta({ description: 'Also the Retry-After header' }),
      service: z.string().optional().meta({ description: 'The service that could not be reached' }),
      orderId: z
        .string()
        .optional()
        .meta({ description: 'The order that was not placed (it is released by the recovery pass)' }),
    })
    .meta({ example: { retryAfterSeconds: 5, service: 'product' } });
  constructor(detail: string = 'A service this request needs is not available', extras?: ErrorExtras) {
    super({
      code: ServiceUnavailable.code,
      status: 503,
      title: 'Service unavailable',
      detail,
      ...retryAfter(extras, 5),
    });
  }
}

/**
 * 502: another service answered, but not with anything its contract declares
 * (an unknown problem code, a status it never sends). The caller's request
 * cannot be completed; the detail never repeats what the remote said.
 */
export class BadGateway extends defineError('SERVICE.BAD_GATEWAY', 502, 'Bad gateway') {}
