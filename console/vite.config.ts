// The console's build: `npm run build` writes into the Python package, which serves it.
import { defineConfig } from "vite";

export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "../src/interlock/console/static",
    emptyOutDir: true,
    target: "es2020",
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
  },
  worker: { format: "es" },
  // `npm exec vite` serves the source with the API of a local `interlock serve`.
  server: { proxy: { "/api": "http://127.0.0.1:8000" } },
});
