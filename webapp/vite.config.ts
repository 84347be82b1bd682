import { defineConfig } from 'vitest/config';

// The dashboard is served by the drago binary at /ui/ (see embed.go). The build
// goes to ui/dist, which is gitignored and embedded when it exists.
export default defineConfig({
  base: '/ui/',
  oxc: {
    jsx: { runtime: 'automatic', importSource: 'preact' },
  },
  build: {
    outDir: 'ui/dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    // Never inline assets as data: URLs: the Content-Security-Policy allows
    // only same-origin images and fonts.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: 'es2022',
  },
  test: {
    environment: 'happy-dom',
    include: ['src/**/*.test.{ts,tsx}'],
    restoreMocks: true,
  },
});
