// Liveness of the web front end itself (not of the backend).
export const dynamic = "force-dynamic";

export function GET(): Response {
  return Response.json({ status: "healthy" }, { headers: { "Cache-Control": "no-store" } });
}
