// The signed-in session's shared objects.

import { createContext } from 'preact';
import type { Client } from '../api/client';
import type { LiveFeed } from './live';

export type ToastKind = 'success' | 'error' | 'info';

export interface AppState {
  api: Client;
  live?: LiveFeed;
  toast: (message: string, kind?: ToastKind) => void;
  signOut: () => void;
}

export const AppContext = createContext<AppState>(null as unknown as AppState);
