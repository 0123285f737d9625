import { defineConfig, type Plugin } from 'vite';

// The dev server proxies the API to a running Watchfire; override with WATCHFIRE_DEV_TARGET.
const target = process.env.WATCHFIRE_DEV_TARGET ?? 'http://127.0.0.1:9090';

// index.html carries `<base href="__WATCHFIRE_BASE__">`; the Rust server replaces the
// placeholder with the route prefix plus a slash. The dev server serves at the root.
function devBase(): Plugin {
  return {
    name: 'watchfire-dev-base',
    apply: 'serve',
    transformIndexHtml: (html) => html.replaceAll('__WATCHFIRE_BASE__', '/'),
  };
}

export default defineConfig({
  // Relative asset URLs: they resolve against <base href>, so any route prefix works.
  base: './',
  plugins: [devBase()],
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1000,
    sourcemap: false,
  },
  server: {
    host: '127.0.0.1',
    proxy: {
      '/api': { target, changeOrigin: true },
      '/-/': { target, changeOrigin: true },
    },
  },
});
