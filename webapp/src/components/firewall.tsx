// FirewallBadge says whether an interface's agent enforces its access policy.

import type { Interface } from '../api/types';
import { enforcement } from '../lib/policy';
import { Badge } from './ui';

export function FirewallBadge({ iface, quiet }: { iface: Interface; quiet?: boolean }) {
  const e = enforcement(iface);
  if (quiet && e.ok) return null;
  const tone = !e.ok ? 'amber' : e.label === 'enforced' ? 'green' : 'grey';
  return (
    <span data-firewall={e.ok ? 'ok' : 'behind'} title={e.detail}>
      <Badge tone={tone} dot={!e.ok}>
        {e.ok ? e.label : `policy ${e.label}`}
      </Badge>
    </span>
  );
}
