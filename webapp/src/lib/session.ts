// The management token lives in sessionStorage: it is gone when the tab closes.

const KEY = 'drago.token';

export function loadToken(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function saveToken(token: string) {
  sessionStorage.setItem(KEY, token);
}

export function clearToken() {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // storage unavailable: nothing to clear
  }
}
