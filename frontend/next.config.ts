import type { NextConfig } from "next";

// No backend URL is baked in at build time: /api/* is proxied at run time by
// app/api/[...path]/route.ts (BACKEND_URL), and in production the gateway routes /api itself.
const nextConfig: NextConfig = {
  output: "standalone",
  poweredByHeader: false,
  reactStrictMode: true,
};

export default nextConfig;
