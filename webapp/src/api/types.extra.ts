// Hand-written companions of the generated types.ts: vocabularies that the Go
// wire types carry as plain strings (named in comments, not in constants).

/** EventKind is Event.kind: the kind of object that changed (server/state eventKind). */
export type EventKind = 'network' | 'host' | 'interface' | 'connection' | 'token' | 'join_token' | 'rule';
