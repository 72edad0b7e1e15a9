import { defineConfig } from "vite";

const target = process.env.PIPESCOPE_URL ?? "http://127.0.0.1:7575";

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
    // PIPESCOPE_URL points elsewhere (e.g. a demo on another port).
    proxy: { "/api": target, "/health": target },
  },
});
