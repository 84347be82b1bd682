// Building blocks of the dashboard's pages: buttons, cards, badges, states,
// dialogs and form fields.

import type { ComponentChildren, JSX } from 'preact';
import { useContext, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api/client';
import { AppContext } from '../lib/context';
import { href, navigate } from '../lib/router';
import { IconAlert, IconClose, IconCopy } from './icons';

export function Link(props: { to: string; class?: string; children: ComponentChildren; title?: string }) {
  return (
    <a
      href={href(props.to)}
      class={props.class}
      title={props.title}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(props.to);
      }}
    >
      {props.children}
    </a>
  );
}

type ButtonProps = JSX.ButtonHTMLAttributes<HTMLButtonElement> & {
  variant?: 'primary' | 'secondary' | 'danger' | 'ghost';
  size?: 'sm' | 'md';
  busy?: boolean;
  icon?: ComponentChildren;
};

export function Button({ variant = 'secondary', size = 'md', busy, icon, children, class: cls, ...rest }: ButtonProps) {
  return (
    <button
      type="button"
      {...rest}
      class={`btn btn-${variant} btn-${size} ${busy ? 'is-busy' : ''} ${cls ?? ''}`}
      disabled={Boolean(rest.disabled) || busy}
    >
      {busy ? <span class="spinner" aria-hidden="true" /> : icon}
      {children && <span>{children}</span>}
    </button>
  );
}

export function PageHeader(props: {
  title: ComponentChildren;
  subtitle?: ComponentChildren;
  actions?: ComponentChildren;
  crumbs?: { to: string; label: string }[];
}) {
  return (
    <header class="page-header">
      <div>
        {props.crumbs && (
          <nav class="crumbs" aria-label="Breadcrumb">
            {props.crumbs.map((c) => (
              <span key={c.to}>
                <Link to={c.to}>{c.label}</Link>
                <span class="crumb-sep">/</span>
              </span>
            ))}
          </nav>
        )}
        <h1>{props.title}</h1>
        {props.subtitle && <p class="page-subtitle">{props.subtitle}</p>}
      </div>
      {props.actions && <div class="page-actions">{props.actions}</div>}
    </header>
  );
}

export function Card(props: {
  title?: ComponentChildren;
  subtitle?: ComponentChildren;
  actions?: ComponentChildren;
  children: ComponentChildren;
  class?: string;
  flush?: boolean;
  testid?: string;
}) {
  return (
    <section class={`card ${props.class ?? ''}`} data-testid={props.testid}>
      {(props.title || props.actions) && (
        <div class="card-header">
          <div>
            {props.title && <h2 class="card-title">{props.title}</h2>}
            {props.subtitle && <p class="card-subtitle">{props.subtitle}</p>}
          </div>
          {props.actions && <div class="card-actions">{props.actions}</div>}
        </div>
      )}
      <div class={props.flush ? 'card-body flush' : 'card-body'}>{props.children}</div>
    </section>
  );
}

export function Badge(props: { tone?: 'green' | 'amber' | 'red' | 'grey' | 'blue' | 'violet'; children: ComponentChildren; dot?: boolean; title?: string }) {
  return (
    <span class={`badge badge-${props.tone ?? 'grey'}`} title={props.title}>
      {props.dot && <span class="dot" />}
      {props.children}
    </span>
  );
}

const statusTone: Record<string, 'green' | 'amber' | 'red' | 'grey' | 'blue' | 'violet'> = {
  ready: 'green',
  down: 'red',
  pending: 'amber',
  device: 'violet',
};

export function StatusBadge({ status }: { status: string }) {
  return (
    <Badge tone={statusTone[status] ?? 'grey'} dot>
      {status || 'unknown'}
    </Badge>
  );
}

export function TopologyBadge({ topology }: { topology: string }) {
  const tone = topology === 'mesh' ? 'blue' : topology === 'hub' ? 'violet' : 'grey';
  return <Badge tone={tone}>{topology || 'none'}</Badge>;
}

export function Empty(props: { icon?: ComponentChildren; title: string; children?: ComponentChildren; action?: ComponentChildren }) {
  return (
    <div class="empty" data-testid="empty">
      {props.icon && <div class="empty-icon">{props.icon}</div>}
      <h3>{props.title}</h3>
      {props.children && <p>{props.children}</p>}
      {props.action && <div class="empty-action">{props.action}</div>}
    </div>
  );
}

export function Loading({ label = 'Loading…', rows = 3 }: { label?: string; rows?: number }) {
  return (
    <div class="loading" aria-busy="true" aria-label={label} data-testid="loading">
      {Array.from({ length: rows }, (_, i) => (
        <div key={i} class="skeleton-line" />
      ))}
    </div>
  );
}

export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

export function ErrorState({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const notFound = error instanceof ApiError && error.status === 404;
  return (
    <div class="error-state" role="alert">
      <IconAlert size={20} />
      <div>
        <strong>{notFound ? 'Not found' : 'Something went wrong'}</strong>
        <p>{errorMessage(error)}</p>
      </div>
      {onRetry && (
        <Button size="sm" onClick={onRetry}>
          Retry
        </Button>
      )}
    </div>
  );
}

export function Alert(props: { tone?: 'error' | 'warning' | 'info' | 'success'; children: ComponentChildren; title?: string }) {
  return (
    <div class={`alert alert-${props.tone ?? 'info'}`} role={props.tone === 'error' ? 'alert' : undefined}>
      {props.title && <strong>{props.title}</strong>}
      <div>{props.children}</div>
    </div>
  );
}

export function Modal(props: {
  title: ComponentChildren;
  onClose: () => void;
  children: ComponentChildren;
  footer?: ComponentChildren;
  wide?: boolean;
  testid?: string;
}) {
  const ref = useRef<HTMLDivElement>(null);
  // Focus the first field before the dialog is painted: Preact runs plain
  // effects after paint, and a late focus() would steal the caret from a
  // field the user (or a test) already started typing in.
  useLayoutEffect(() => {
    ref.current?.querySelector<HTMLElement>('input:not([type=hidden]), select, textarea')?.focus();
  }, []);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && props.onClose();
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return (
    <div class="modal-backdrop" onMouseDown={(e) => e.target === e.currentTarget && props.onClose()}>
      <div class={`modal ${props.wide ? 'modal-wide' : ''}`} role="dialog" aria-modal="true" ref={ref} data-testid={props.testid}>
        <div class="modal-header">
          <h2>{props.title}</h2>
          <button type="button" class="icon-btn" aria-label="Close" onClick={props.onClose}>
            <IconClose />
          </button>
        </div>
        <div class="modal-body">{props.children}</div>
        {props.footer && <div class="modal-footer">{props.footer}</div>}
      </div>
    </div>
  );
}

/** ConfirmDialog asks before a destructive action and shows its error, if any. */
export function ConfirmDialog(props: {
  title: string;
  children: ComponentChildren;
  confirmLabel?: string;
  onConfirm: () => Promise<unknown>;
  onClose: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  return (
    <Modal
      title={props.title}
      onClose={props.onClose}
      testid="confirm"
      footer={
        <>
          <Button onClick={props.onClose}>Cancel</Button>
          <Button
            variant="danger"
            busy={busy}
            onClick={async () => {
              setBusy(true);
              setError(null);
              try {
                await props.onConfirm();
                props.onClose();
              } catch (e) {
                setError(e);
                setBusy(false);
              }
            }}
          >
            {props.confirmLabel ?? 'Delete'}
          </Button>
        </>
      }
    >
      <div class="confirm-text">{props.children}</div>
      {error != null && <Alert tone="error">{errorMessage(error)}</Alert>}
    </Modal>
  );
}

/** FormErrors places an API error next to the field it names, or above the form. */
export class FormErrors {
  readonly error: unknown;
  constructor(error: unknown) {
    this.error = error;
  }
  /** field answers the message for a field the error names. */
  field(name: string): string | undefined {
    const e = this.error;
    if (e instanceof ApiError && e.field && (e.field === name || e.field.startsWith(name + '.') || e.field.startsWith(name + '['))) {
      return e.message;
    }
    return undefined;
  }
  /** general answers the message when the error names none of fields. */
  general(fields: string[]): string | undefined {
    const e = this.error;
    if (e == null) return undefined;
    if (e instanceof ApiError && e.field && fields.some((f) => this.field(f))) return undefined;
    const msg = errorMessage(e);
    return e instanceof ApiError && e.field ? `${e.field}: ${msg}` : msg;
  }
}

export function Field(props: {
  label: ComponentChildren;
  name: string;
  error?: string;
  hint?: ComponentChildren;
  children: ComponentChildren;
  class?: string;
  /** group: the control is a set of buttons or checkboxes, so no <label> wraps it. */
  group?: boolean;
}) {
  const Tag = props.group ? 'div' : 'label';
  return (
    <Tag class={`field ${props.error ? 'invalid' : ''} ${props.class ?? ''}`} data-field={props.name} role={props.group ? 'group' : undefined}>
      <span class="field-label">{props.label}</span>
      {props.children}
      {props.error ? (
        <span class="field-error" role="alert" data-error-for={props.name}>
          {props.error}
        </span>
      ) : (
        props.hint && <span class="field-hint">{props.hint}</span>
      )}
    </Tag>
  );
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const { toast } = useContext(AppContext);
  const [copied, setCopied] = useState(false);
  return (
    <Button
      size="sm"
      icon={<IconCopy size={15} />}
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
          setCopied(true);
          setTimeout(() => setCopied(false), 1500);
        } catch {
          toast('Copy failed: select the text and copy it by hand', 'error');
        }
      }}
    >
      {copied ? 'Copied' : label}
    </Button>
  );
}

export function Mono({ children, title }: { children: ComponentChildren; title?: string }) {
  return (
    <code class="mono" title={title}>
      {children}
    </code>
  );
}

export function Stat(props: { label: string; value: ComponentChildren; detail?: ComponentChildren; tone?: string; icon?: ComponentChildren; testid?: string }) {
  return (
    <div class={`stat stat-${props.tone ?? 'default'}`} data-testid={props.testid}>
      <div class="stat-top">
        <span class="stat-label">{props.label}</span>
        {props.icon && <span class="stat-icon">{props.icon}</span>}
      </div>
      <div class="stat-value">{props.value}</div>
      {props.detail && <div class="stat-detail">{props.detail}</div>}
    </div>
  );
}

export function DefList({ items }: { items: [ComponentChildren, ComponentChildren][] }) {
  return (
    <dl class="deflist">
      {items.map(([k, v], i) => (
        <div key={i}>
          <dt>{k}</dt>
          <dd>{v ?? '—'}</dd>
        </div>
      ))}
    </dl>
  );
}

/** PendingPage stands in for a detail page whose object is not loaded yet:
 * its header, then the load error (with retry) or a loading skeleton. */
export function PendingPage(props: {
  title: ComponentChildren;
  crumbs: { to: string; label: string }[];
  error: unknown;
  onRetry: () => void;
}) {
  return (
    <div class="page">
      <PageHeader title={props.title} crumbs={props.crumbs} />
      {props.error != null ? <ErrorState error={props.error} onRetry={props.onRetry} /> : <Loading rows={6} />}
    </div>
  );
}
