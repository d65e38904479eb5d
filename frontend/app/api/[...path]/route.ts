// Run-time proxy of /api/* to the backend, for local runs (`next dev`, the standalone server).
// In production the gateway routes /api to the backend directly and never reaches this.
// BACKEND_URL is read per request, so nothing about the backend is baked in at build time.
import type { NextRequest } from "next/server";

export const dynamic = "force-dynamic";

const DEFAULT_BACKEND_URL = "http://127.0.0.1:8080";
const TIMEOUT_MS = 15_000;

const REQUEST_HEADERS = ["authorization", "content-type", "accept", "accept-language", "if-none-match"];
const RESPONSE_HEADERS = [
  "content-type",
  "cache-control",
  "etag",
  "last-modified",
  "retry-after",
  "www-authenticate",
  "location",
  "x-request-id",
];
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

interface Context {
  params: Promise<{ path: string[] }>;
}

function backendBase(): string {
  const configured = process.env.BACKEND_URL?.trim();
  return (configured ? configured : DEFAULT_BACKEND_URL).replace(/\/+$/, "");
}

async function proxy(request: NextRequest, context: Context): Promise<Response> {
  const { path } = await context.params;
  const target = `${backendBase()}/api/${path.map(encodeURIComponent).join("/")}${request.nextUrl.search}`;

  const headers = new Headers();
  for (const name of REQUEST_HEADERS) {
    const value = request.headers.get(name);
    if (value !== null) headers.set(name, value);
  }
  const forwardedFor = request.headers.get("x-forwarded-for");
  if (forwardedFor !== null) headers.set("x-forwarded-for", forwardedFor);

  const method = request.method.toUpperCase();
  const hasBody = method !== "GET" && method !== "HEAD";

  let upstream: Response;
  let body: ArrayBuffer | null;
  try {
    upstream = await fetch(target, {
      method,
      headers,
      body: hasBody ? await request.arrayBuffer() : undefined,
      redirect: "manual",
      cache: "no-store",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    body = NULL_BODY_STATUSES.has(upstream.status) || method === "HEAD" ? null : await upstream.arrayBuffer();
  } catch {
    return Response.json(
      {
        error: {
          code: "backend_unreachable",
          message: "The videoconf backend could not be reached. Try again in a moment.",
        },
      },
      { status: 502, headers: { "Cache-Control": "no-store" } },
    );
  }

  const responseHeaders = new Headers();
  for (const name of RESPONSE_HEADERS) {
    const value = upstream.headers.get(name);
    if (value !== null) responseHeaders.set(name, value);
  }
  if (!responseHeaders.has("cache-control")) responseHeaders.set("cache-control", "no-store");

  return new Response(body, { status: upstream.status, statusText: upstream.statusText, headers: responseHeaders });
}

export {
  proxy as GET,
  proxy as POST,
  proxy as PUT,
  proxy as PATCH,
  proxy as DELETE,
  proxy as HEAD,
  proxy as OPTIONS,
};
