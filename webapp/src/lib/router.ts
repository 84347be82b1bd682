// A small History API router for the dashboard, mounted under /ui.

import { useEffect, useState } from 'preact/hooks';

export const BASE = '/ui';

/** appPath turns a location pathname into a path relative to BASE ("/" at the root). */
export function appPath(pathname: string): string {
  if (pathname === BASE) return '/';
  if (pathname.startsWith(BASE + '/')) {
    const rest = pathname.slice(BASE.length);
    return rest.length > 1 && rest.endsWith('/') ? rest.slice(0, -1) : rest;
  }
  return '/';
}

/** href is the absolute URL path of an app path. */
export function href(path: string): string {
  return BASE + (path.startsWith('/') ? path : '/' + path);
}

const listeners = new Set<() => void>();

export function navigate(path: string, opts: { replace?: boolean } = {}) {
  const url = href(path);
  if (opts.replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  listeners.forEach((l) => l());
  window.scrollTo?.(0, 0);
}

/** useRoute answers the current app path and re-renders on navigation. */
export function useRoute(): string {
  const [path, setPath] = useState(() => appPath(location.pathname));
  useEffect(() => {
    const update = () => setPath(appPath(location.pathname));
    listeners.add(update);
    window.addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      window.removeEventListener('popstate', update);
    };
  }, []);
  return path;
}

/**
 * match answers the parameters of path for pattern (e.g. "/networks/:name"),
 * or null when it does not match. Parameters are URI-decoded.
 */
export function match(pattern: string, path: string): Record<string, string> | null {
  const ps = pattern.split('/').filter(Boolean);
  const xs = path.split('/').filter(Boolean);
  if (ps.length !== xs.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < ps.length; i++) {
    if (ps[i].startsWith(':')) {
      try {
        params[ps[i].slice(1)] = decodeURIComponent(xs[i]);
      } catch {
        return null;
      }
    } else if (ps[i] !== xs[i]) return null;
  }
  return params;
}
