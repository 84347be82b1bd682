// The dashboard's shell: sign-in, the sidebar and the routes of the pages.

import type { ComponentChildren } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, Client } from './api/client';
import { Button, errorMessage, Link } from './components/ui';
import { IconActivity, IconDevice, IconHost, IconKey, IconNetwork, IconOverview, IconSignOut, Logo } from './components/icons';
import { AppContext, type ToastKind } from './lib/context';
import { LiveFeed, type LiveState } from './lib/live';
import { match, navigate, useRoute } from './lib/router';
import { clearToken, loadToken, saveToken } from './lib/session';
import { OverviewPage } from './pages/overview';
import { NetworksPage } from './pages/networks';
import { NetworkPage } from './pages/network';
import { HostsPage } from './pages/hosts';
import { HostPage } from './pages/host';
import { DevicesPage } from './pages/devices';
import { JoinTokensPage } from './pages/jointokens';
import { AuditPage } from './pages/audit';

export function App() {
  const [token, setToken] = useState<string | null>(() => loadToken());
  const [notice, setNotice] = useState<string>();
  if (!token) {
    return (
      <SignIn
        notice={notice}
        onSignIn={(t) => {
          saveToken(t);
          setNotice(undefined);
          setToken(t);
        }}
      />
    );
  }
  return (
    <Shell
      token={token}
      onSignOut={(why) => {
        clearToken();
        setNotice(why);
        setToken(null);
      }}
    />
  );
}

export function SignIn(props: { onSignIn: (token: string) => void; notice?: string; fetch?: typeof fetch }) {
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  async function submit(e: Event) {
    e.preventDefault();
    const t = value.trim();
    if (!t) {
      setError('Enter a management token.');
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await new Client(t, { fetch: props.fetch }).status();
      props.onSignIn(t);
    } catch (err) {
      setError(
        err instanceof ApiError && (err.status === 401 || err.status === 403)
          ? 'This token was not accepted by the server.'
          : `Cannot reach the server: ${errorMessage(err)}`,
      );
      setBusy(false);
    }
  }
  return (
    <div class="signin">
      <form class="signin-card" onSubmit={submit} data-testid="signin">
        <div class="signin-brand">
          <Logo size={40} />
          <div>
            <h1>Drago</h1>
            <p>WireGuard control plane</p>
          </div>
        </div>
        <h2>Sign in</h2>
        <p class="muted">
          Paste a management token. The root token is in <code>&lt;data-dir&gt;/root-token</code> on the server.
        </p>
        {props.notice && <div class="alert alert-warning">{props.notice}</div>}
        <label class={`field ${error ? 'invalid' : ''}`} data-field="token">
          <span class="field-label">Management token</span>
          <input
            type="password"
            name="token"
            autocomplete="off"
            spellcheck={false}
            value={value}
            onInput={(e) => setValue(e.currentTarget.value)}
            placeholder="drago_…"
            autofocus
          />
          {error && (
            <span class="field-error" role="alert" data-error-for="token">
              {error}
            </span>
          )}
        </label>
        <Button type="submit" variant="primary" busy={busy} class="btn-block">
          Sign in
        </Button>
        <p class="signin-foot">The token is kept in this tab only and sent solely in the Authorization header.</p>
      </form>
    </div>
  );
}

interface Toast {
  id: number;
  message: string;
  kind: ToastKind;
}

let toastSeq = 0;

function Shell({ token, onSignOut }: { token: string; onSignOut: (why?: string) => void }) {
  const api = useMemo(() => new Client(token), [token]);
  const live = useMemo(() => new LiveFeed(api), [api]);
  const [liveState, setLiveState] = useState<LiveState>('connecting');
  const [version, setVersion] = useState<string>();
  const [who, setWho] = useState<string>();
  const [toasts, setToasts] = useState<Toast[]>([]);
  const path = useRoute();

  useEffect(() => {
    api.onUnauthorized = () => onSignOut('Your session ended: the server no longer accepts this token.');
    const off = live.onState(setLiveState);
    let stopped = false;
    api
      .status()
      .then((s) => {
        if (stopped) return;
        setVersion(s.version);
        live.start(s.index);
      })
      .catch(() => {
        if (!stopped) live.start(0);
      });
    api.tokenSelf().then((t) => !stopped && setWho(t.root ? 'root token' : t.name), () => {});
    return () => {
      stopped = true;
      off();
      live.stop();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [api, live]);

  const toast = (message: string, kind: ToastKind = 'success') => {
    const id = ++toastSeq;
    setToasts((ts) => [...ts, { id, message, kind }]);
    setTimeout(() => setToasts((ts) => ts.filter((t) => t.id !== id)), 4000);
  };

  const ctx = useMemo(() => ({ api, live, toast, signOut: () => onSignOut() }), [api, live]);

  return (
    <AppContext.Provider value={ctx}>
      <div class="layout">
        <aside class="sidebar">
          <div class="brand">
            <Logo />
            <span>Drago</span>
          </div>
          <nav class="nav">
            <NavItem to="/" path={path} icon={<IconOverview />} exact>
              Overview
            </NavItem>
            <NavItem to="/networks" path={path} icon={<IconNetwork />}>
              Networks
            </NavItem>
            <NavItem to="/hosts" path={path} icon={<IconHost />}>
              Hosts
            </NavItem>
            <NavItem to="/devices" path={path} icon={<IconDevice />}>
              Devices
            </NavItem>
            <NavItem to="/join-tokens" path={path} icon={<IconKey />}>
              Join tokens
            </NavItem>
            <NavItem to="/audit" path={path} icon={<IconActivity />}>
              Audit
            </NavItem>
          </nav>
          <div class="sidebar-foot">
            <div class={`live live-${liveState}`} data-testid="live" title="Live updates from the server's change index">
              <span class="live-dot" />
              {liveState === 'live' ? 'Live' : liveState === 'connecting' ? 'Connecting…' : 'Offline, retrying'}
            </div>
            <div class="who">
              <div>
                <div class="who-name">{who ?? 'Signed in'}</div>
                {version && <div class="who-version">server {version}</div>}
              </div>
              <button type="button" class="icon-btn" title="Sign out" aria-label="Sign out" onClick={() => onSignOut()}>
                <IconSignOut />
              </button>
            </div>
          </div>
        </aside>
        <main class="main">
          <Routes path={path} />
        </main>
      </div>
      <div class="toasts" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} class={`toast toast-${t.kind}`} role="status">
            {t.message}
          </div>
        ))}
      </div>
    </AppContext.Provider>
  );
}

function NavItem(props: { to: string; path: string; icon: ComponentChildren; exact?: boolean; children: ComponentChildren }) {
  const active = props.exact ? props.path === props.to : props.path === props.to || props.path.startsWith(props.to + '/');
  return (
    <Link to={props.to} class={`nav-item ${active ? 'active' : ''}`}>
      {props.icon}
      <span>{props.children}</span>
    </Link>
  );
}

function Routes({ path }: { path: string }) {
  let m: Record<string, string> | null;
  if (path === '/') return <OverviewPage />;
  if (match('/networks', path)) return <NetworksPage />;
  if ((m = match('/networks/:name', path))) return <NetworkPage key={m.name} name={m.name} />;
  if (match('/hosts', path)) return <HostsPage />;
  if ((m = match('/hosts/:name', path))) return <HostPage key={m.name} name={m.name} />;
  if (match('/devices', path)) return <DevicesPage />;
  if (match('/join-tokens', path)) return <JoinTokensPage />;
  if (match('/audit', path)) return <AuditPage />;
  return (
    <div class="notfound">
      <h1>Page not found</h1>
      <p>
        Nothing lives at <code>{path}</code>.
      </p>
      <Button variant="primary" onClick={() => navigate('/')}>
        Go to the overview
      </Button>
    </div>
  );
}
