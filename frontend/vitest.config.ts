import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Unit tests only (tests/unit); the environment is node unless a file asks for jsdom with
// a `// @vitest-environment jsdom` comment.
export default defineConfig({
  resolve: {
    alias: { "@": fileURLToPath(new URL("./", import.meta.url)) },
  },
  test: {
    include: ["tests/unit/**/*.test.ts"],
    environment: "node",
    restoreMocks: true,
  },
});
