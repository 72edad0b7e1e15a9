import { defineConfig } from "vite";

// The build lands in web/dist, which the pipescope binary embeds.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    // `npx vite` during portal work: the API comes from a running `pipescope run`.
    proxy: { "/api": "http://127.0.0.1:7575", "/health": "http://127.0.0.1:7575" },
  },
});
