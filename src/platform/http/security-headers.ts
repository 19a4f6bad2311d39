/**
 * The response headers every answer carries: helmet's security headers
 * (CSP, nosniff, X-Frame-Options DENY, HSTS when cookies are Secure, …) and
 * `Cache-Control: no-store` (README "API overview").
 *
 * They are computed once, at start, by running helmet's middleware against a
 * recording response, and then set by one onRequest hook. @fastify/helmet
 * rebuilds helmet's middleware on every request, which cost about a fifth of
 * the CPU of a device-list request (docs/performance.md); this policy has no
 * per-request part (no CSP nonces), so the headers are a constant.
 */
import helmet, { type HelmetOptions } from 'helmet';

export function computeSecurityHeaders(options: HelmetOptions): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader(name: string, value: unknown) {
      headers[name.toLowerCase()] = String(value);
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  let finished = false;
  helmet(options)({} as never, recorder as never, (error?: unknown) => {
    if (error) throw error;
    finished = true;
  });
  if (!finished) throw new Error('helmet did not finish synchronously');
  return Object.freeze({ ...headers, 'cache-control': 'no-store' });
}

export function securityHeaderOptions(cookieSecure: boolean): HelmetOptions {
  return {
    // upgrade-insecure-requests would break plain-http use (COOKIE_SECURE=false, development).
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null, frameAncestors: ["'none'"] } },
    frameguard: { action: 'deny' },
    hsts: cookieSecure ? { maxAge: 31_536_000, includeSubDomains: true } : false,
  };
}
