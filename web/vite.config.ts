import { defineConfig } from "vitest/config";

// Served by the local stack (and CloudFront) under /app/; `npm run dev` proxies the API to a
// running `make run`.
export default defineConfig({
  base: "/app/",
  esbuild: { jsx: "automatic" },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, target: "es2022" },
  server: {
    proxy: { "/api": "http://127.0.0.1:8000" },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
