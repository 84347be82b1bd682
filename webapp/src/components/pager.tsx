// Pager moves through a server-side list page by page.

import { Button } from './ui';

export function Pager(props: { offset: number; limit: number; total: number; onOffset: (o: number) => void; noun?: string }) {
  const { offset, limit, total } = props;
  if (total <= limit && offset === 0) {
    return <div class="pager muted">{`${total} ${props.noun ?? 'item'}${total === 1 ? '' : 's'}`}</div>;
  }
  const last = Math.min(offset + limit, total);
  return (
    <div class="pager">
      <span class="muted">
        {total === 0 ? 0 : offset + 1}–{last} of {total}
      </span>
      <Button size="sm" disabled={offset === 0} onClick={() => props.onOffset(Math.max(0, offset - limit))}>
        Previous
      </Button>
      <Button size="sm" disabled={last >= total} onClick={() => props.onOffset(offset + limit)}>
        Next
      </Button>
    </div>
  );
}
