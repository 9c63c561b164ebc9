// What the episode driver needs from the other actors: typed clients of the proto services, the same
// whether they are reached over gRPC or NATS request-reply (or called in-process in tests).

import type { ClientOf } from '../core/grpc.js';
import type { Policy } from '../core/gen/parley/v1/policy_pb.js';
import type { Sandbox } from '../core/gen/parley/v1/sandbox_pb.js';
import type { UserSimulator } from '../core/gen/parley/v1/usersim_pb.js';

export type PolicyPort = Pick<ClientOf<typeof Policy>, 'generate'>;
/** `end` is optional: a simulator without it forgets the conversation at its idle TTL. */
export type UserPort = Pick<ClientOf<typeof UserSimulator>, 'start' | 'reply'> & Partial<Pick<ClientOf<typeof UserSimulator>, 'end'>>;
export type SandboxPort = Pick<
  ClientOf<typeof Sandbox>,
  'listTasks' | 'openSession' | 'forkSession' | 'call' | 'evaluate' | 'closeSession'
>;

export interface EpisodePorts {
  policy: PolicyPort;
  user: UserPort;
  sandbox: SandboxPort;
}
