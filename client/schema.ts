/**
 * The toko API's types, generated from /openapi.json by openapi-typescript.
 * Do not edit: run `npm run generate:client` after changing a route.
 */
export interface paths {
    "/health": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Liveness: the process is up */
        get: operations["getLiveness"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/health/ready": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Readiness: every hosted module's dependencies answer
         * @description Answers 503 naming each check that failed, and 503 (`failing: ["draining"]`) from SIGTERM on.
         */
        get: operations["getReadiness"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/health/system": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Readiness of the whole deployment: every module, wherever it runs
         * @description This process's modules are ready when its own checks pass; a module another service hosts is ready when that service's `/health/ready` answers 200 within the health timeout. Answers 503 naming the modules that are not. In one process it is `/health/ready` by module; behind the split gateway it is the gateway's `/health/ready`.
         */
        get: operations["getSystemReadiness"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/users/register": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Register a customer account */
        post: operations["registerUser"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/users/login": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Exchange e-mail and password for an access token
         * @description The same 401 for an unknown e-mail and a wrong password. Repeated failures answer 429 with Retry-After.
         */
        post: operations["logIn"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/users/me": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller’s own profile */
        get: operations["getMe"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/users/verify": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Check a bearer token: its claims and its user */
        post: operations["verifyToken"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/users": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List users (admin) */
        get: operations["listUsers"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/users/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * One user (yourself, or anyone for an admin)
         * @description Another user’s id answers 404, exactly like an id that does not exist.
         */
        get: operations["getUser"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        /**
         * Deactivate or reactivate a user, or change their role (admin)
         * @description Not on your own account (422), and never the last active admin (409 USER.LAST_ADMIN). A deactivated user cannot log in, and their tokens, like a demoted admin’s admin rights, stop working on every service within ACCOUNT_CHECK_TTL_MS (30 s by default).
         */
        patch: operations["updateUser"];
        trace?: never;
    };
    "/.well-known/jwks.json": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Public keys that verify toko access tokens */
        get: operations["getJwks"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/products": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Browse the catalogue
         * @description Filter by category, search the name (case-insensitive), sort; `limit` at most 100.
         */
        get: operations["listProducts"];
        put?: never;
        /** Add a product (admin) */
        post: operations["createProduct"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/products/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One product */
        get: operations["getProduct"];
        put?: never;
        post?: never;
        /**
         * Remove a product (admin)
         * @description Orders keep their own snapshot of the product, so they are not affected.
         */
        delete: operations["deleteProduct"];
        options?: never;
        head?: never;
        /** Change a product (admin) */
        patch: operations["updateProduct"];
        trace?: never;
    };
    "/api/v1/products/{id}/stock": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Restock or correct stock atomically (admin)
         * @description Adds `delta` (negative to take away). Answers 409 instead of letting stock go below zero, and 422 (naming how much can still be added) instead of going past 2,147,483,647.
         */
        post: operations["adjustStock"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/orders": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Your orders, newest first (admins: everyone’s, filterable by user) */
        get: operations["listOrders"];
        put?: never;
        /**
         * Place an order
         * @description Reserves stock for every line or none. 201 with the confirmed order; 409 when stock is short (each short product named) and the order is recorded as rejected; 503 with Retry-After when the catalogue cannot answer (the order is then released by the recovery pass). With `Idempotency-Key`, the same key and body from the same user get the first outcome (also a 409) for 24 h; the same key with another body is 422; a duplicate arriving while the first is still being placed waits for it (up to 10 s), then gets 409.
         */
        post: operations["placeOrder"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/orders/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * One order (yours, or any for an admin)
         * @description Someone else’s order answers 404, exactly like an order that does not exist.
         */
        get: operations["getOrder"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/admin/orders": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Orders by saga state, with the last step and error of each (admin)
         * @description The "why is this order stuck" view. `stuck=true` keeps the orders the recovery pass has yet to finish — pending, or cancelled with stock still held — untouched for longer than ORDER_PENDING_TIMEOUT_SECONDS, oldest first. `lastStep` is one of: placed, reserve_failed, confirmed, rejected, cancelled, release_failed, released.
         */
        get: operations["listOrderSagas"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/orders/{id}/cancel": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Cancel a confirmed order and give its stock back */
        post: operations["cancelOrder"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/notifications": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Your notifications, newest first (admins: everyone’s, filterable) */
        get: operations["listNotifications"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/notifications/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One notification, whole (yours, or any for an admin) */
        get: operations["getNotification"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/admin/events/user": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Events in the user module's outbox (admin)
         * @description `status=dead` lists events given up after their last attempt, with the last error.
         */
        get: operations["listUserOutboxEvents"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/admin/events/user/{id}/replay": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Deliver one dead user event again (admin)
         * @description Safe: every handler is idempotent.
         */
        post: operations["replayUserDeadEvent"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/admin/events/user/replay": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Deliver every dead user event again (admin) */
        post: operations["replayUserDeadEvents"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/admin/events/order": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Events in the order module's outbox (admin)
         * @description `status=dead` lists events given up after their last attempt, with the last error.
         */
        get: operations["listOrderOutboxEvents"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/admin/events/order/{id}/replay": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Deliver one dead order event again (admin)
         * @description Safe: every handler is idempotent.
         */
        post: operations["replayOrderDeadEvent"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/admin/events/order/replay": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Deliver every dead order event again (admin) */
        post: operations["replayOrderDeadEvents"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/openapi.json": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** This OpenAPI 3.1 document */
        get: operations["getOpenApiDocument"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Redirects to /docs */
        get: operations["getHome"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/docs": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Swagger UI */
        get: operations["getSwaggerUi"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/redoc": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Redoc */
        get: operations["getRedoc"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/metrics": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Prometheus metrics (this machine, or METRICS_TOKEN; not mounted here when METRICS_PORT is set) */
        get: operations["getMetrics"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/queues": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Bull Board: every toko queue (admin; Bearer token or HTTP basic with the admin credentials). 404 when BullMQ is not in use. */
        get: operations["getQueuesBoard"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /** @description Not ready (RFC 9457 problem document) */
        "Problem.HEALTH.NOT_READY": {
            /** @enum {string} */
            type: "urn:toko:problem:HEALTH.NOT_READY";
            title: string;
            /** @enum {number} */
            status: 503;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "HEALTH.NOT_READY";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
            failing: string[];
            /** @description Every check of this process (GET /health/ready) */
            checks?: {
                [key: string]: "ok" | "failing";
            };
            info?: {
                [key: string]: string;
            };
            /** @description Every module (GET /health/system) */
            modules?: {
                [key: string]: "ok" | "failing";
            };
        };
        /**
         * @example {
         *       "id": "0193a1b2-0000-7000-8000-000000000001",
         *       "email": "siti@example.co.id",
         *       "username": "siti_rahma",
         *       "fullName": "Siti Rahmawati",
         *       "role": "customer",
         *       "isActive": true,
         *       "isVerified": false,
         *       "createdAt": "2026-12-03T08:15:00.000Z",
         *       "updatedAt": "2026-12-03T08:15:00.000Z"
         *     }
         */
        User: {
            id: string;
            email: string;
            username: string;
            fullName: string;
            /** @enum {string} */
            role: "customer" | "admin";
            isActive: boolean;
            isVerified: boolean;
            /** Format: date-time */
            createdAt: string;
            /** Format: date-time */
            updatedAt: string;
        };
        /** @description Malformed JSON (RFC 9457 problem document) */
        "Problem.REQUEST.MALFORMED_JSON": {
            /** @enum {string} */
            type: "urn:toko:problem:REQUEST.MALFORMED_JSON";
            title: string;
            /** @enum {number} */
            status: 400;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "REQUEST.MALFORMED_JSON";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
        };
        /** @description User already exists (RFC 9457 problem document) */
        "Problem.USER.ALREADY_EXISTS": {
            /** @enum {string} */
            type: "urn:toko:problem:USER.ALREADY_EXISTS";
            title: string;
            /** @enum {number} */
            status: 409;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "USER.ALREADY_EXISTS";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
            /**
             * @description Which one is taken
             * @enum {string}
             */
            field: "email" | "username";
        };
        /** @description Payload too large (RFC 9457 problem document) */
        "Problem.REQUEST.TOO_LARGE": {
            /** @enum {string} */
            type: "urn:toko:problem:REQUEST.TOO_LARGE";
            title: string;
            /** @enum {number} */
            status: 413;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "REQUEST.TOO_LARGE";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
        };
        /** @description Unsupported media type (RFC 9457 problem document) */
        "Problem.REQUEST.UNSUPPORTED_MEDIA_TYPE": {
            /** @enum {string} */
            type: "urn:toko:problem:REQUEST.UNSUPPORTED_MEDIA_TYPE";
            title: string;
            /** @enum {number} */
            status: 415;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "REQUEST.UNSUPPORTED_MEDIA_TYPE";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
        };
        /** @description Validation failed (RFC 9457 problem document) */
        "Problem.REQUEST.VALIDATION_FAILED": {
            /** @enum {string} */
            type: "urn:toko:problem:REQUEST.VALIDATION_FAILED";
            title: string;
            /** @enum {number} */
            status: 422;
            /** @description What happened to this request, in words */
            detail: string;
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            code: "REQUEST.VALIDATION_FAILED";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
            /** @description One entry per bad field; `path` is dotted (`items.0.quantity`) */
            errors: {
                path: string;
                message: string;
            }[];
        };
        /** @description Too many requests (RFC 9457 problem document) */
        "Problem.REQUEST.TOO_MANY": {
            /** @enum {string} */
            type: "urn:toko:problem:REQUEST.TOO_MANY";
            title: string;
            /** @enum {number} */
            status: 429;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "REQUEST.TOO_MANY";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
            /** @description Also the Retry-After header */
            retryAfterSeconds: number;
        };
        /** @description Service unavailable (RFC 9457 problem document) */
        "Problem.SERVICE.UNAVAILABLE": {
            /** @enum {string} */
            type: "urn:toko:problem:SERVICE.UNAVAILABLE";
            title: string;
            /** @enum {number} */
            status: 503;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "SERVICE.UNAVAILABLE";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
            /** @description Also the Retry-After header */
            retryAfterSeconds: number;
            /** @description The service that could not be reached */
            service?: string;
            /** @description The order that was not placed (it is released by the recovery pass) */
            orderId?: string;
        };
        /**
         * @example {
         *       "email": "siti@example.co.id",
         *       "username": "siti_rahma",
         *       "password": "rahasia-sekali",
         *       "fullName": "Siti Rahmawati"
         *     }
         */
        RegisterRequest: {
            /** @example siti@example.co.id */
            email: string;
            /** @example siti_rahma */
            username: string;
            /** @example rahasia-sekali */
            password: string;
            /** @example Siti Rahmawati */
            fullName: string;
        };
        /**
         * @example {
         *       "accessToken": "eyJhbGciOiJSUzI1NiIsImtpZCI6InRva28tMSJ9.eyJzdWIiOiIwMTkzYTFiMiJ9.c2lnbmF0dXJl",
         *       "tokenType": "bearer",
         *       "expiresIn": 900
         *     }
         */
        TokenResponse: {
            accessToken: string;
            /** @enum {string} */
            tokenType: "bearer";
            /** @description Seconds */
            expiresIn: number;
        };
        /** @description Invalid credentials (RFC 9457 problem document) */
        "Problem.USER.INVALID_CREDENTIALS": {
            /** @enum {string} */
            type: "urn:toko:problem:USER.INVALID_CREDENTIALS";
            title: string;
            /** @enum {number} */
            status: 401;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "USER.INVALID_CREDENTIALS";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
        };
        /**
         * @example {
         *       "email": "siti@example.co.id",
         *       "password": "rahasia-sekali"
         *     }
         */
        LoginRequest: {
            /** @example siti@example.co.id */
            email: string;
            /** @example rahasia-sekali */
            password: string;
        };
        /** @description Unauthorized (RFC 9457 problem document) */
        "Problem.AUTH.UNAUTHORIZED": {
            /** @enum {string} */
            type: "urn:toko:problem:AUTH.UNAUTHORIZED";
            title: string;
            /** @enum {number} */
            status: 401;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "AUTH.UNAUTHORIZED";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
        };
        /** @description User not found (RFC 9457 problem document) */
        "Problem.USER.NOT_FOUND": {
            /** @enum {string} */
            type: "urn:toko:problem:USER.NOT_FOUND";
            title: string;
            /** @enum {number} */
            status: 404;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "USER.NOT_FOUND";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
            /** @description The id asked for */
            id: string;
        };
        VerifyResponse: {
            /**
             * @example {
             *       "sub": "0193a1b2-0000-7000-8000-000000000001",
             *       "role": "customer",
             *       "iat": 1796285700,
             *       "exp": 1796286600,
             *       "iss": "toko",
             *       "aud": "toko-api"
             *     }
             */
            claims: {
                sub: string;
                role: string;
                iat: number;
                exp: number;
                iss: string;
                aud: string | string[];
            };
            user: components["schemas"]["User"];
        };
        UserPage: {
            items: components["schemas"]["User"][];
            /**
             * @description Items matching, over all pages
             * @example 1
             */
            total: number;
            /** @example 0 */
            skip: number;
            /** @example 20 */
            limit: number;
        };
        /** @description Forbidden (RFC 9457 problem document) */
        "Problem.AUTH.FORBIDDEN": {
            /** @enum {string} */
            type: "urn:toko:problem:AUTH.FORBIDDEN";
            title: string;
            /** @enum {number} */
            status: 403;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "AUTH.FORBIDDEN";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
        };
        /** @description Last active admin (RFC 9457 problem document) */
        "Problem.USER.LAST_ADMIN": {
            /** @enum {string} */
            type: "urn:toko:problem:USER.LAST_ADMIN";
            title: string;
            /** @enum {number} */
            status: 409;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "USER.LAST_ADMIN";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
            /** @description The admin who would have been the last */
            id: string;
        };
        /**
         * @example {
         *       "isActive": false
         *     }
         */
        UserAccessChange: {
            isActive?: boolean;
            /** @enum {string} */
            role?: "customer" | "admin";
        };
        /**
         * @example {
         *       "keys": [
         *         {
         *           "kty": "RSA",
         *           "kid": "toko-1",
         *           "use": "sig",
         *           "alg": "RS256",
         *           "n": "0vx7agoebGcQSuuPiLJXZpt…",
         *           "e": "AQAB"
         *         }
         *       ]
         *     }
         */
        Jwks: {
            keys: {
                [key: string]: unknown;
            }[];
        };
        ProductPage: {
            items: components["schemas"]["Product"][];
            /**
             * @description Items matching, over all pages
             * @example 1
             */
            total: number;
            /** @example 0 */
            skip: number;
            /** @example 20 */
            limit: number;
        };
        /**
         * @example {
         *       "id": "64d3a0000000000000000001",
         *       "name": "Kopi Gayo Arabika 250 g",
         *       "description": "Biji kopi arabika dari dataran tinggi Gayo.",
         *       "price": 8500000,
         *       "currency": "IDR",
         *       "stock": 40,
         *       "category": "makanan-minuman",
         *       "imageUrl": null,
         *       "createdAt": "2026-12-01T02:00:00.000Z",
         *       "updatedAt": "2026-12-03T08:16:00.000Z"
         *     }
         */
        Product: {
            id: string;
            name: string;
            description: string;
            price: number;
            currency: string;
            stock: number;
            category: string;
            imageUrl: string | null;
            /** Format: date-time */
            createdAt: string;
            /** Format: date-time */
            updatedAt: string;
        };
        /** @description Product not found (RFC 9457 problem document) */
        "Problem.PRODUCT.NOT_FOUND": {
            /** @enum {string} */
            type: "urn:toko:problem:PRODUCT.NOT_FOUND";
            title: string;
            /** @enum {number} */
            status: 404;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "PRODUCT.NOT_FOUND";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
            /** @description The product ids that do not exist */
            ids: string[];
        };
        /**
         * @example {
         *       "name": "Kopi Gayo Arabika 250 g",
         *       "description": "Biji kopi arabika dari dataran tinggi Gayo.",
         *       "price": 8500000,
         *       "stock": 40,
         *       "category": "makanan-minuman",
         *       "imageUrl": null
         *     }
         */
        NewProduct: {
            /** @example Kopi Gayo Arabika 250 g */
            name: string;
            /**
             * @default
             * @example Biji kopi arabika dari dataran tinggi Gayo.
             */
            description: string;
            /** @example 1500000 */
            price: number;
            /** @default 0 */
            stock: number;
            /** @example makanan-minuman */
            category: string;
            /**
             * Format: uri
             * @default null
             * @example https://cdn.example/kopi.jpg
             */
            imageUrl: string | null;
        };
        /**
         * @description Stock is changed only through POST /api/v1/products/{id}/stock.
         * @example {
         *       "price": 7900000
         *     }
         */
        ProductPatch: {
            /** @example Kopi Gayo Arabika 250 g */
            name?: string;
            /** @example Biji kopi arabika dari dataran tinggi Gayo. */
            description?: string;
            /** @example 1500000 */
            price?: number;
            /** @example makanan-minuman */
            category?: string;
            /**
             * Format: uri
             * @example https://cdn.example/kopi.jpg
             */
            imageUrl?: string | null;
        };
        /** @description Stock conflict (RFC 9457 problem document) */
        "Problem.PRODUCT.STOCK_CONFLICT": {
            /** @enum {string} */
            type: "urn:toko:problem:PRODUCT.STOCK_CONFLICT";
            title: string;
            /** @enum {number} */
            status: 409;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "PRODUCT.STOCK_CONFLICT";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
            productId: string;
            /** @description Stock as it stands */
            stock: number;
            /** @description The adjustment refused */
            delta: number;
        };
        /**
         * @example {
         *       "delta": 25
         *     }
         */
        StockAdjustment: {
            /** @example 25 */
            delta: number;
        };
        /**
         * @example {
         *       "id": "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b",
         *       "userId": "0193a1b2-0000-7000-8000-000000000001",
         *       "status": "confirmed",
         *       "items": [
         *         {
         *           "productId": "64d3a0000000000000000001",
         *           "name": "Kopi Gayo Arabika 250 g",
         *           "unitPrice": 8500000,
         *           "quantity": 2,
         *           "lineTotal": 17000000
         *         }
         *       ],
         *       "total": 17000000,
         *       "currency": "IDR",
         *       "rejectionReason": null,
         *       "createdAt": "2026-12-03T08:16:00.000Z",
         *       "updatedAt": "2026-12-03T08:16:00.000Z"
         *     }
         */
        Order: {
            id: string;
            userId: string;
            /** @enum {string} */
            status: "pending" | "confirmed" | "rejected" | "cancelled";
            items: {
                productId: string;
                name: string;
                unitPrice: number;
                quantity: number;
                lineTotal: number;
            }[];
            total: number;
            currency: string;
            rejectionReason: string | null;
            /** Format: date-time */
            createdAt: string;
            /** Format: date-time */
            updatedAt: string;
        };
        /** @description Account cannot order (RFC 9457 problem document) */
        "Problem.ORDER.CUSTOMER_INACTIVE": {
            /** @enum {string} */
            type: "urn:toko:problem:ORDER.CUSTOMER_INACTIVE";
            title: string;
            /** @enum {number} */
            status: 403;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "ORDER.CUSTOMER_INACTIVE";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
        };
        /** @description Out of stock (RFC 9457 problem document) */
        "Problem.ORDER.OUT_OF_STOCK": {
            /** @enum {string} */
            type: "urn:toko:problem:ORDER.OUT_OF_STOCK";
            title: string;
            /** @enum {number} */
            status: 409;
            /** @description What happened to this request, in words */
            detail: string;
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            code: "ORDER.OUT_OF_STOCK";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
            /** @description The order, recorded as rejected */
            orderId: string;
            /** @description Each short product: what was asked and what is in stock */
            items: {
                productId: string;
                requested: number;
                available: number;
            }[];
        };
        /** @description Order rejected (RFC 9457 problem document) */
        "Problem.ORDER.REJECTED": {
            /** @enum {string} */
            type: "urn:toko:problem:ORDER.REJECTED";
            title: string;
            /** @enum {number} */
            status: 409;
            /** @description What happened to this request, in words */
            detail: string;
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            code: "ORDER.REJECTED";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
            /** @description The order, recorded as rejected */
            orderId: string;
            /** @description Products that disappeared while ordering */
            ids?: string[];
        };
        /** @description Request in progress (RFC 9457 problem document) */
        "Problem.ORDER.IDEMPOTENCY_IN_FLIGHT": {
            /** @enum {string} */
            type: "urn:toko:problem:ORDER.IDEMPOTENCY_IN_FLIGHT";
            title: string;
            /** @enum {number} */
            status: 409;
            /** @description What happened to this request, in words */
            detail: string;
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            code: "ORDER.IDEMPOTENCY_IN_FLIGHT";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
        };
        /** @description Idempotency key reused (RFC 9457 problem document) */
        "Problem.ORDER.IDEMPOTENCY_KEY_REUSED": {
            /** @enum {string} */
            type: "urn:toko:problem:ORDER.IDEMPOTENCY_KEY_REUSED";
            title: string;
            /** @enum {number} */
            status: 422;
            /** @description What happened to this request, in words */
            detail: string;
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            code: "ORDER.IDEMPOTENCY_KEY_REUSED";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
        };
        /**
         * @example {
         *       "items": [
         *         {
         *           "productId": "64d3a0000000000000000001",
         *           "quantity": 2
         *         }
         *       ]
         *     }
         */
        PlaceOrder: {
            /** @description Lines for the same product are merged (quantities added). Limits: ORDER_MAX_LINES, ORDER_MAX_QUANTITY. */
            items: {
                productId: string;
                quantity: number;
            }[];
        };
        OrderPage: {
            items: components["schemas"]["Order"][];
            /**
             * @description Items matching, over all pages
             * @example 1
             */
            total: number;
            /** @example 0 */
            skip: number;
            /** @example 20 */
            limit: number;
        };
        /** @description Order not found (RFC 9457 problem document) */
        "Problem.ORDER.NOT_FOUND": {
            /** @enum {string} */
            type: "urn:toko:problem:ORDER.NOT_FOUND";
            title: string;
            /** @enum {number} */
            status: 404;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "ORDER.NOT_FOUND";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
            /** @description The id asked for */
            id: string;
        };
        OrderSagaPage: {
            items: components["schemas"]["OrderSaga"][];
            /**
             * @description Items matching, over all pages
             * @example 1
             */
            total: number;
            /** @example 0 */
            skip: number;
            /** @example 20 */
            limit: number;
        };
        /**
         * @example {
         *       "id": "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b",
         *       "userId": "0193a1b2-0000-7000-8000-000000000001",
         *       "status": "pending",
         *       "stockHeld": true,
         *       "lastStep": "reserve_failed",
         *       "lastError": "The product service cannot be reached right now",
         *       "rejectionReason": null,
         *       "createdAt": "2026-12-03T08:16:00.000Z",
         *       "updatedAt": "2026-12-03T08:16:02.000Z",
         *       "idleSeconds": 640
         *     }
         */
        OrderSaga: {
            id: string;
            userId: string;
            /** @enum {string} */
            status: "pending" | "confirmed" | "rejected" | "cancelled";
            /** @description The product module may still hold stock for this order */
            stockHeld: boolean;
            /** @enum {string} */
            lastStep: "placed" | "reserve_failed" | "confirmed" | "rejected" | "cancelled" | "release_failed" | "released";
            /** @description Why the saga stopped at its last step, if it failed there */
            lastError: string | null;
            rejectionReason: string | null;
            /** Format: date-time */
            createdAt: string;
            /** Format: date-time */
            updatedAt: string;
            /** @description Seconds since the saga last moved */
            idleSeconds: number;
        };
        /** @description Order cannot be cancelled (RFC 9457 problem document) */
        "Problem.ORDER.NOT_CANCELLABLE": {
            /** @enum {string} */
            type: "urn:toko:problem:ORDER.NOT_CANCELLABLE";
            title: string;
            /** @enum {number} */
            status: 409;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "ORDER.NOT_CANCELLABLE";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
            /**
             * @description The status the order is in
             * @enum {string}
             */
            orderStatus: "pending" | "confirmed" | "rejected" | "cancelled";
        };
        NotificationPage: {
            items: components["schemas"]["Notification"][];
            /**
             * @description Items matching, over all pages
             * @example 1
             */
            total: number;
            /** @example 0 */
            skip: number;
            /** @example 20 */
            limit: number;
        };
        /**
         * @example {
         *       "id": "0193a1b2-0000-7000-8000-00000000000a",
         *       "eventId": "0193a1b2-0000-7000-8000-0000000000e1",
         *       "userId": "0193a1b2-0000-7000-8000-000000000001",
         *       "channel": "email",
         *       "template": "order-confirmed",
         *       "recipient": "siti@example.co.id",
         *       "subject": "Pesanan Anda dikonfirmasi",
         *       "body": "Halo Siti Rahmawati, pesanan Anda sebesar Rp 170.000 sudah dikonfirmasi.",
         *       "status": "sent",
         *       "attempts": 1,
         *       "lastError": null,
         *       "sentAt": "2026-12-03T08:16:01.000Z",
         *       "createdAt": "2026-12-03T08:16:00.000Z",
         *       "updatedAt": "2026-12-03T08:16:01.000Z"
         *     }
         */
        Notification: {
            id: string;
            eventId: string;
            userId: string;
            /** @enum {string} */
            channel: "email";
            template: string;
            recipient: string;
            subject: string;
            body: string;
            /** @enum {string} */
            status: "pending" | "sent" | "failed";
            attempts: number;
            lastError: string | null;
            sentAt: string | null;
            createdAt: string;
            updatedAt: string;
        };
        /** @description Notification not found (RFC 9457 problem document) */
        "Problem.NOTIFICATION.NOT_FOUND": {
            /** @enum {string} */
            type: "urn:toko:problem:NOTIFICATION.NOT_FOUND";
            title: string;
            /** @enum {number} */
            status: 404;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "NOTIFICATION.NOT_FOUND";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
            /** @description The id asked for */
            id: string;
        };
        OutboxEventPage: {
            items: components["schemas"]["OutboxEvent"][];
            /**
             * @description Items matching, over all pages
             * @example 1
             */
            total: number;
            /** @example 0 */
            skip: number;
            /** @example 20 */
            limit: number;
        };
        /**
         * @example {
         *       "id": "0193a1b2-0000-7000-8000-0000000000e1",
         *       "type": "order.confirmed",
         *       "version": 1,
         *       "payload": {
         *         "id": "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b",
         *         "status": "confirmed"
         *       },
         *       "requestId": "a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607",
         *       "occurredAt": "2026-12-03T08:16:00.000Z",
         *       "status": "dead",
         *       "attempts": 20,
         *       "lastError": "connect ECONNREFUSED (SMTP)",
         *       "deliveredAt": null
         *     }
         */
        OutboxEvent: {
            id: string;
            type: string;
            version: number;
            payload?: unknown;
            requestId: string | null;
            occurredAt: string;
            /** @enum {string} */
            status: "pending" | "delivered" | "dead";
            attempts: number;
            lastError: string | null;
            deliveredAt: string | null;
        };
        /** @description Not found (RFC 9457 problem document) */
        "Problem.HTTP.NOT_FOUND": {
            /** @enum {string} */
            type: "urn:toko:problem:HTTP.NOT_FOUND";
            title: string;
            /** @enum {number} */
            status: 404;
            /** @description What happened to this request, in words */
            detail: string;
            /** @enum {string} */
            code: "HTTP.NOT_FOUND";
            /** @description The request path */
            instance: string;
            /** @description Also the x-request-id header, and in every log line of the request */
            requestId: string;
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    getLiveness: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "status": "ok",
                     *       "modules": [
                     *         "user",
                     *         "product",
                     *         "order",
                     *         "notification"
                     *       ]
                     *     }
                     */
                    "application/json": {
                        /** @enum {string} */
                        status: "ok";
                        modules: string[];
                    };
                };
            };
        };
    };
    getReadiness: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "status": "ok",
                     *       "checks": {
                     *         "user.database": "ok",
                     *         "order.database": "ok",
                     *         "events.redis": "ok"
                     *       },
                     *       "info": {
                     *         "eventBus": "bullmq"
                     *       }
                     *     }
                     */
                    "application/json": {
                        /** @enum {string} */
                        status: "ok";
                        checks: {
                            [key: string]: "ok";
                        };
                        info: {
                            [key: string]: string;
                        };
                    };
                };
            };
            /** @description A dependency is not available; see Retry-After */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.HEALTH.NOT_READY"];
                };
            };
        };
    };
    getSystemReadiness: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "status": "ok",
                     *       "modules": {
                     *         "user": "ok",
                     *         "product": "ok",
                     *         "order": "ok",
                     *         "notification": "ok"
                     *       }
                     *     }
                     */
                    "application/json": {
                        /** @enum {string} */
                        status: "ok";
                        modules: {
                            [key: string]: "ok" | "failing";
                        };
                    };
                };
            };
            /** @description A dependency is not available; see Retry-After */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.HEALTH.NOT_READY"];
                };
            };
        };
    };
    registerUser: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["RegisterRequest"];
            };
        };
        responses: {
            /** @description Success */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "id": "0193a1b2-0000-7000-8000-000000000001",
                     *       "email": "siti@example.co.id",
                     *       "username": "siti_rahma",
                     *       "fullName": "Siti Rahmawati",
                     *       "role": "customer",
                     *       "isActive": true,
                     *       "isVerified": false,
                     *       "createdAt": "2026-12-03T08:15:00.000Z",
                     *       "updatedAt": "2026-12-03T08:15:00.000Z"
                     *     }
                     */
                    "application/json": components["schemas"]["User"];
                };
            };
            /** @description Malformed JSON */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.MALFORMED_JSON"];
                };
            };
            /** @description Conflicts with what is stored */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.USER.ALREADY_EXISTS"];
                };
            };
            /** @description Body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.TOO_LARGE"];
                };
            };
            /** @description Body is not JSON */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.UNSUPPORTED_MEDIA_TYPE"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
            /** @description Too many attempts; see Retry-After */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.TOO_MANY"];
                };
            };
            /** @description A dependency is not available; see Retry-After */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.SERVICE.UNAVAILABLE"];
                };
            };
        };
    };
    logIn: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["LoginRequest"];
            };
        };
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "accessToken": "eyJhbGciOiJSUzI1NiIsImtpZCI6InRva28tMSJ9.eyJzdWIiOiIwMTkzYTFiMiJ9.c2lnbmF0dXJl",
                     *       "tokenType": "bearer",
                     *       "expiresIn": 900
                     *     }
                     */
                    "application/json": components["schemas"]["TokenResponse"];
                };
            };
            /** @description Malformed JSON */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.MALFORMED_JSON"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.USER.INVALID_CREDENTIALS"];
                };
            };
            /** @description Body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.TOO_LARGE"];
                };
            };
            /** @description Body is not JSON */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.UNSUPPORTED_MEDIA_TYPE"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
            /** @description Too many attempts; see Retry-After */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.TOO_MANY"];
                };
            };
            /** @description A dependency is not available; see Retry-After */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.SERVICE.UNAVAILABLE"];
                };
            };
        };
    };
    getMe: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "id": "0193a1b2-0000-7000-8000-000000000001",
                     *       "email": "siti@example.co.id",
                     *       "username": "siti_rahma",
                     *       "fullName": "Siti Rahmawati",
                     *       "role": "customer",
                     *       "isActive": true,
                     *       "isVerified": false,
                     *       "createdAt": "2026-12-03T08:15:00.000Z",
                     *       "updatedAt": "2026-12-03T08:15:00.000Z"
                     *     }
                     */
                    "application/json": components["schemas"]["User"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Not found (or not yours to see) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.USER.NOT_FOUND"];
                };
            };
        };
    };
    verifyToken: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "claims": {
                     *         "sub": "0193a1b2-0000-7000-8000-000000000001",
                     *         "role": "customer",
                     *         "iat": 1796285700,
                     *         "exp": 1796286600,
                     *         "iss": "toko",
                     *         "aud": "toko-api"
                     *       },
                     *       "user": {
                     *         "id": "0193a1b2-0000-7000-8000-000000000001",
                     *         "email": "siti@example.co.id",
                     *         "username": "siti_rahma",
                     *         "fullName": "Siti Rahmawati",
                     *         "role": "customer",
                     *         "isActive": true,
                     *         "isVerified": false,
                     *         "createdAt": "2026-12-03T08:15:00.000Z",
                     *         "updatedAt": "2026-12-03T08:15:00.000Z"
                     *       }
                     *     }
                     */
                    "application/json": components["schemas"]["VerifyResponse"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
        };
    };
    listUsers: {
        parameters: {
            query?: {
                /** @description How many items to skip */
                skip?: number | null;
                /** @description Page size, at most 100 */
                limit?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "items": [
                     *         {
                     *           "id": "0193a1b2-0000-7000-8000-000000000001",
                     *           "email": "siti@example.co.id",
                     *           "username": "siti_rahma",
                     *           "fullName": "Siti Rahmawati",
                     *           "role": "customer",
                     *           "isActive": true,
                     *           "isVerified": false,
                     *           "createdAt": "2026-12-03T08:15:00.000Z",
                     *           "updatedAt": "2026-12-03T08:15:00.000Z"
                     *         }
                     *       ],
                     *       "total": 1,
                     *       "skip": 0,
                     *       "limit": 20
                     *     }
                     */
                    "application/json": components["schemas"]["UserPage"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Your role may not use this route */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.FORBIDDEN"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    getUser: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "id": "0193a1b2-0000-7000-8000-000000000001",
                     *       "email": "siti@example.co.id",
                     *       "username": "siti_rahma",
                     *       "fullName": "Siti Rahmawati",
                     *       "role": "customer",
                     *       "isActive": true,
                     *       "isVerified": false,
                     *       "createdAt": "2026-12-03T08:15:00.000Z",
                     *       "updatedAt": "2026-12-03T08:15:00.000Z"
                     *     }
                     */
                    "application/json": components["schemas"]["User"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Not found (or not yours to see) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.USER.NOT_FOUND"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    updateUser: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["UserAccessChange"];
            };
        };
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "id": "0193a1b2-0000-7000-8000-000000000001",
                     *       "email": "siti@example.co.id",
                     *       "username": "siti_rahma",
                     *       "fullName": "Siti Rahmawati",
                     *       "role": "customer",
                     *       "isActive": true,
                     *       "isVerified": false,
                     *       "createdAt": "2026-12-03T08:15:00.000Z",
                     *       "updatedAt": "2026-12-03T08:15:00.000Z"
                     *     }
                     */
                    "application/json": components["schemas"]["User"];
                };
            };
            /** @description Malformed JSON */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.MALFORMED_JSON"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Your role may not use this route */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.FORBIDDEN"];
                };
            };
            /** @description Not found (or not yours to see) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.USER.NOT_FOUND"];
                };
            };
            /** @description Conflicts with what is stored */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.USER.LAST_ADMIN"];
                };
            };
            /** @description Body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.TOO_LARGE"];
                };
            };
            /** @description Body is not JSON */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.UNSUPPORTED_MEDIA_TYPE"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    getJwks: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "keys": [
                     *         {
                     *           "kty": "RSA",
                     *           "kid": "toko-1",
                     *           "use": "sig",
                     *           "alg": "RS256",
                     *           "n": "0vx7agoebGcQSuuPiLJXZpt…",
                     *           "e": "AQAB"
                     *         }
                     *       ]
                     *     }
                     */
                    "application/json": components["schemas"]["Jwks"];
                };
            };
        };
    };
    listProducts: {
        parameters: {
            query?: {
                /** @description How many items to skip */
                skip?: number | null;
                /** @description Page size, at most 100 */
                limit?: number;
                /** @description Only this category (e.g. makanan-minuman) */
                category?: string;
                /** @description Case-insensitive part of the name */
                q?: string;
                /** @description Field to sort by; a leading - sorts descending */
                sort?: "-createdAt" | "createdAt" | "price" | "-price" | "name" | "-name";
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "items": [
                     *         {
                     *           "id": "64d3a0000000000000000001",
                     *           "name": "Kopi Gayo Arabika 250 g",
                     *           "description": "Biji kopi arabika dari dataran tinggi Gayo.",
                     *           "price": 8500000,
                     *           "currency": "IDR",
                     *           "stock": 40,
                     *           "category": "makanan-minuman",
                     *           "imageUrl": null,
                     *           "createdAt": "2026-12-01T02:00:00.000Z",
                     *           "updatedAt": "2026-12-03T08:16:00.000Z"
                     *         }
                     *       ],
                     *       "total": 1,
                     *       "skip": 0,
                     *       "limit": 20
                     *     }
                     */
                    "application/json": components["schemas"]["ProductPage"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    createProduct: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["NewProduct"];
            };
        };
        responses: {
            /** @description Success */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "id": "64d3a0000000000000000001",
                     *       "name": "Kopi Gayo Arabika 250 g",
                     *       "description": "Biji kopi arabika dari dataran tinggi Gayo.",
                     *       "price": 8500000,
                     *       "currency": "IDR",
                     *       "stock": 40,
                     *       "category": "makanan-minuman",
                     *       "imageUrl": null,
                     *       "createdAt": "2026-12-01T02:00:00.000Z",
                     *       "updatedAt": "2026-12-03T08:16:00.000Z"
                     *     }
                     */
                    "application/json": components["schemas"]["Product"];
                };
            };
            /** @description Malformed JSON */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.MALFORMED_JSON"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Your role may not use this route */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.FORBIDDEN"];
                };
            };
            /** @description Body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.TOO_LARGE"];
                };
            };
            /** @description Body is not JSON */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.UNSUPPORTED_MEDIA_TYPE"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    getProduct: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "id": "64d3a0000000000000000001",
                     *       "name": "Kopi Gayo Arabika 250 g",
                     *       "description": "Biji kopi arabika dari dataran tinggi Gayo.",
                     *       "price": 8500000,
                     *       "currency": "IDR",
                     *       "stock": 40,
                     *       "category": "makanan-minuman",
                     *       "imageUrl": null,
                     *       "createdAt": "2026-12-01T02:00:00.000Z",
                     *       "updatedAt": "2026-12-03T08:16:00.000Z"
                     *     }
                     */
                    "application/json": components["schemas"]["Product"];
                };
            };
            /** @description Not found (or not yours to see) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.PRODUCT.NOT_FOUND"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    deleteProduct: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Done; no content */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Your role may not use this route */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.FORBIDDEN"];
                };
            };
            /** @description Not found (or not yours to see) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.PRODUCT.NOT_FOUND"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    updateProduct: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["ProductPatch"];
            };
        };
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "id": "64d3a0000000000000000001",
                     *       "name": "Kopi Gayo Arabika 250 g",
                     *       "description": "Biji kopi arabika dari dataran tinggi Gayo.",
                     *       "price": 8500000,
                     *       "currency": "IDR",
                     *       "stock": 40,
                     *       "category": "makanan-minuman",
                     *       "imageUrl": null,
                     *       "createdAt": "2026-12-01T02:00:00.000Z",
                     *       "updatedAt": "2026-12-03T08:16:00.000Z"
                     *     }
                     */
                    "application/json": components["schemas"]["Product"];
                };
            };
            /** @description Malformed JSON */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.MALFORMED_JSON"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Your role may not use this route */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.FORBIDDEN"];
                };
            };
            /** @description Not found (or not yours to see) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.PRODUCT.NOT_FOUND"];
                };
            };
            /** @description Body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.TOO_LARGE"];
                };
            };
            /** @description Body is not JSON */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.UNSUPPORTED_MEDIA_TYPE"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    adjustStock: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["StockAdjustment"];
            };
        };
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "id": "64d3a0000000000000000001",
                     *       "name": "Kopi Gayo Arabika 250 g",
                     *       "description": "Biji kopi arabika dari dataran tinggi Gayo.",
                     *       "price": 8500000,
                     *       "currency": "IDR",
                     *       "stock": 40,
                     *       "category": "makanan-minuman",
                     *       "imageUrl": null,
                     *       "createdAt": "2026-12-01T02:00:00.000Z",
                     *       "updatedAt": "2026-12-03T08:16:00.000Z"
                     *     }
                     */
                    "application/json": components["schemas"]["Product"];
                };
            };
            /** @description Malformed JSON */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.MALFORMED_JSON"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Your role may not use this route */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.FORBIDDEN"];
                };
            };
            /** @description Not found (or not yours to see) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.PRODUCT.NOT_FOUND"];
                };
            };
            /** @description Conflicts with what is stored */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.PRODUCT.STOCK_CONFLICT"];
                };
            };
            /** @description Body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.TOO_LARGE"];
                };
            };
            /** @description Body is not JSON */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.UNSUPPORTED_MEDIA_TYPE"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    listOrders: {
        parameters: {
            query?: {
                /** @description How many items to skip */
                skip?: number | null;
                /** @description Page size, at most 100 */
                limit?: number;
                status?: "pending" | "confirmed" | "rejected" | "cancelled";
                userId?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "items": [
                     *         {
                     *           "id": "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b",
                     *           "userId": "0193a1b2-0000-7000-8000-000000000001",
                     *           "status": "confirmed",
                     *           "items": [
                     *             {
                     *               "productId": "64d3a0000000000000000001",
                     *               "name": "Kopi Gayo Arabika 250 g",
                     *               "unitPrice": 8500000,
                     *               "quantity": 2,
                     *               "lineTotal": 17000000
                     *             }
                     *           ],
                     *           "total": 17000000,
                     *           "currency": "IDR",
                     *           "rejectionReason": null,
                     *           "createdAt": "2026-12-03T08:16:00.000Z",
                     *           "updatedAt": "2026-12-03T08:16:00.000Z"
                     *         }
                     *       ],
                     *       "total": 1,
                     *       "skip": 0,
                     *       "limit": 20
                     *     }
                     */
                    "application/json": components["schemas"]["OrderPage"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Your role may not use this route */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.FORBIDDEN"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    placeOrder: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes retries safe: one order per key per user */
                "idempotency-key"?: string;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["PlaceOrder"];
            };
        };
        responses: {
            /** @description Success */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "id": "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b",
                     *       "userId": "0193a1b2-0000-7000-8000-000000000001",
                     *       "status": "confirmed",
                     *       "items": [
                     *         {
                     *           "productId": "64d3a0000000000000000001",
                     *           "name": "Kopi Gayo Arabika 250 g",
                     *           "unitPrice": 8500000,
                     *           "quantity": 2,
                     *           "lineTotal": 17000000
                     *         }
                     *       ],
                     *       "total": 17000000,
                     *       "currency": "IDR",
                     *       "rejectionReason": null,
                     *       "createdAt": "2026-12-03T08:16:00.000Z",
                     *       "updatedAt": "2026-12-03T08:16:00.000Z"
                     *     }
                     */
                    "application/json": components["schemas"]["Order"];
                };
            };
            /** @description Malformed JSON */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.MALFORMED_JSON"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Your role may not use this route */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.ORDER.CUSTOMER_INACTIVE"];
                };
            };
            /** @description Conflicts with what is stored */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.ORDER.OUT_OF_STOCK"] | components["schemas"]["Problem.ORDER.REJECTED"] | components["schemas"]["Problem.ORDER.IDEMPOTENCY_IN_FLIGHT"];
                };
            };
            /** @description Body too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.TOO_LARGE"];
                };
            };
            /** @description Body is not JSON */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.UNSUPPORTED_MEDIA_TYPE"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.ORDER.IDEMPOTENCY_KEY_REUSED"] | components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
            /** @description A dependency is not available; see Retry-After */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.SERVICE.UNAVAILABLE"];
                };
            };
        };
    };
    getOrder: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "id": "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b",
                     *       "userId": "0193a1b2-0000-7000-8000-000000000001",
                     *       "status": "confirmed",
                     *       "items": [
                     *         {
                     *           "productId": "64d3a0000000000000000001",
                     *           "name": "Kopi Gayo Arabika 250 g",
                     *           "unitPrice": 8500000,
                     *           "quantity": 2,
                     *           "lineTotal": 17000000
                     *         }
                     *       ],
                     *       "total": 17000000,
                     *       "currency": "IDR",
                     *       "rejectionReason": null,
                     *       "createdAt": "2026-12-03T08:16:00.000Z",
                     *       "updatedAt": "2026-12-03T08:16:00.000Z"
                     *     }
                     */
                    "application/json": components["schemas"]["Order"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Not found (or not yours to see) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.ORDER.NOT_FOUND"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    listOrderSagas: {
        parameters: {
            query?: {
                /** @description How many items to skip */
                skip?: number | null;
                /** @description Page size, at most 100 */
                limit?: number;
                status?: "pending" | "confirmed" | "rejected" | "cancelled";
                /** @description Only orders recovery has yet to finish, idle past the pending timeout */
                stuck?: "true" | "false";
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "items": [
                     *         {
                     *           "id": "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b",
                     *           "userId": "0193a1b2-0000-7000-8000-000000000001",
                     *           "status": "pending",
                     *           "stockHeld": true,
                     *           "lastStep": "reserve_failed",
                     *           "lastError": "The product service cannot be reached right now",
                     *           "rejectionReason": null,
                     *           "createdAt": "2026-12-03T08:16:00.000Z",
                     *           "updatedAt": "2026-12-03T08:16:02.000Z",
                     *           "idleSeconds": 640
                     *         }
                     *       ],
                     *       "total": 1,
                     *       "skip": 0,
                     *       "limit": 20
                     *     }
                     */
                    "application/json": components["schemas"]["OrderSagaPage"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Your role may not use this route */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.FORBIDDEN"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    cancelOrder: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "id": "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b",
                     *       "userId": "0193a1b2-0000-7000-8000-000000000001",
                     *       "status": "confirmed",
                     *       "items": [
                     *         {
                     *           "productId": "64d3a0000000000000000001",
                     *           "name": "Kopi Gayo Arabika 250 g",
                     *           "unitPrice": 8500000,
                     *           "quantity": 2,
                     *           "lineTotal": 17000000
                     *         }
                     *       ],
                     *       "total": 17000000,
                     *       "currency": "IDR",
                     *       "rejectionReason": null,
                     *       "createdAt": "2026-12-03T08:16:00.000Z",
                     *       "updatedAt": "2026-12-03T08:16:00.000Z"
                     *     }
                     */
                    "application/json": components["schemas"]["Order"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Not found (or not yours to see) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.ORDER.NOT_FOUND"];
                };
            };
            /** @description Conflicts with what is stored */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.ORDER.NOT_CANCELLABLE"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    listNotifications: {
        parameters: {
            query?: {
                /** @description How many items to skip */
                skip?: number | null;
                /** @description Page size, at most 100 */
                limit?: number;
                status?: "pending" | "sent" | "failed";
                userId?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "items": [
                     *         {
                     *           "id": "0193a1b2-0000-7000-8000-00000000000a",
                     *           "eventId": "0193a1b2-0000-7000-8000-0000000000e1",
                     *           "userId": "0193a1b2-0000-7000-8000-000000000001",
                     *           "channel": "email",
                     *           "template": "order-confirmed",
                     *           "recipient": "siti@example.co.id",
                     *           "subject": "Pesanan Anda dikonfirmasi",
                     *           "body": "Halo Siti Rahmawati, pesanan Anda sebesar Rp 170.000 sudah dikonfirmasi.",
                     *           "status": "sent",
                     *           "attempts": 1,
                     *           "lastError": null,
                     *           "sentAt": "2026-12-03T08:16:01.000Z",
                     *           "createdAt": "2026-12-03T08:16:00.000Z",
                     *           "updatedAt": "2026-12-03T08:16:01.000Z"
                     *         }
                     *       ],
                     *       "total": 1,
                     *       "skip": 0,
                     *       "limit": 20
                     *     }
                     */
                    "application/json": components["schemas"]["NotificationPage"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Your role may not use this route */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.FORBIDDEN"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    getNotification: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "id": "0193a1b2-0000-7000-8000-00000000000a",
                     *       "eventId": "0193a1b2-0000-7000-8000-0000000000e1",
                     *       "userId": "0193a1b2-0000-7000-8000-000000000001",
                     *       "channel": "email",
                     *       "template": "order-confirmed",
                     *       "recipient": "siti@example.co.id",
                     *       "subject": "Pesanan Anda dikonfirmasi",
                     *       "body": "Halo Siti Rahmawati, pesanan Anda sebesar Rp 170.000 sudah dikonfirmasi.",
                     *       "status": "sent",
                     *       "attempts": 1,
                     *       "lastError": null,
                     *       "sentAt": "2026-12-03T08:16:01.000Z",
                     *       "createdAt": "2026-12-03T08:16:00.000Z",
                     *       "updatedAt": "2026-12-03T08:16:01.000Z"
                     *     }
                     */
                    "application/json": components["schemas"]["Notification"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Not found (or not yours to see) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.NOTIFICATION.NOT_FOUND"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    listUserOutboxEvents: {
        parameters: {
            query?: {
                /** @description How many items to skip */
                skip?: number | null;
                /** @description Page size, at most 100 */
                limit?: number;
                status?: "pending" | "delivered" | "dead";
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "items": [
                     *         {
                     *           "id": "0193a1b2-0000-7000-8000-0000000000e1",
                     *           "type": "order.confirmed",
                     *           "version": 1,
                     *           "payload": {
                     *             "id": "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b",
                     *             "status": "confirmed"
                     *           },
                     *           "requestId": "a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607",
                     *           "occurredAt": "2026-12-03T08:16:00.000Z",
                     *           "status": "dead",
                     *           "attempts": 20,
                     *           "lastError": "connect ECONNREFUSED (SMTP)",
                     *           "deliveredAt": null
                     *         }
                     *       ],
                     *       "total": 1,
                     *       "skip": 0,
                     *       "limit": 20
                     *     }
                     */
                    "application/json": components["schemas"]["OutboxEventPage"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Your role may not use this route */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.FORBIDDEN"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    replayUserDeadEvent: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "replayed": 1
                     *     }
                     */
                    "application/json": {
                        /**
                         * @description Events delivered again
                         * @example 1
                         */
                        replayed: number;
                    };
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Your role may not use this route */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.FORBIDDEN"];
                };
            };
            /** @description Not found (or not yours to see) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.HTTP.NOT_FOUND"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    replayUserDeadEvents: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "replayed": 1
                     *     }
                     */
                    "application/json": {
                        /**
                         * @description Events delivered again
                         * @example 1
                         */
                        replayed: number;
                    };
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Your role may not use this route */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.FORBIDDEN"];
                };
            };
        };
    };
    listOrderOutboxEvents: {
        parameters: {
            query?: {
                /** @description How many items to skip */
                skip?: number | null;
                /** @description Page size, at most 100 */
                limit?: number;
                status?: "pending" | "delivered" | "dead";
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "items": [
                     *         {
                     *           "id": "0193a1b2-0000-7000-8000-0000000000e1",
                     *           "type": "order.confirmed",
                     *           "version": 1,
                     *           "payload": {
                     *             "id": "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b",
                     *             "status": "confirmed"
                     *           },
                     *           "requestId": "a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607",
                     *           "occurredAt": "2026-12-03T08:16:00.000Z",
                     *           "status": "dead",
                     *           "attempts": 20,
                     *           "lastError": "connect ECONNREFUSED (SMTP)",
                     *           "deliveredAt": null
                     *         }
                     *       ],
                     *       "total": 1,
                     *       "skip": 0,
                     *       "limit": 20
                     *     }
                     */
                    "application/json": components["schemas"]["OutboxEventPage"];
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Your role may not use this route */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.FORBIDDEN"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    replayOrderDeadEvent: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "replayed": 1
                     *     }
                     */
                    "application/json": {
                        /**
                         * @description Events delivered again
                         * @example 1
                         */
                        replayed: number;
                    };
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Your role may not use this route */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.FORBIDDEN"];
                };
            };
            /** @description Not found (or not yours to see) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.HTTP.NOT_FOUND"];
                };
            };
            /** @description Validation failed, one entry per bad field */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.REQUEST.VALIDATION_FAILED"];
                };
            };
        };
    };
    replayOrderDeadEvents: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "replayed": 1
                     *     }
                     */
                    "application/json": {
                        /**
                         * @description Events delivered again
                         * @example 1
                         */
                        replayed: number;
                    };
                };
            };
            /** @description No token, or a token that is not valid */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.UNAUTHORIZED"];
                };
            };
            /** @description Your role may not use this route */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem.AUTH.FORBIDDEN"];
                };
            };
        };
    };
    getOpenApiDocument: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": string;
                };
            };
        };
    };
    getHome: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
        };
    };
    getSwaggerUi: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
        };
    };
    getRedoc: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
        };
    };
    getMetrics: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/plain": string;
                };
            };
        };
    };
    getQueuesBoard: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Success */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
        };
    };
}
