// Entry point of the `parley` command.

import { Command, CommanderError } from 'commander';
import { ParleyError } from '../core/errors.js';
import { CliError } from './errors.js';
import { registerBenchCommands, registerRolloutServe } from './bench-commands.js';
import { registerEvalCommand, registerRunCommand } from './run-command.js';
import { registerControllerCommands } from '../controller/cli.js';
import { registerCoordinatorServeCommand } from '../controller/coordinator/index.js';
import { registerPrepareCommand } from './prepare-command.js';
import { registerSandboxCommands } from './sandbox-commands.js';
import { usersimCommand } from '../usersim/cli.js';
import { registerEngineCommands, registerLearnerServeCommand } from '../learner/cli.js';
import { EngineSamplerBackend, connectTrainer } from '../learner/index.js';
import { loadChatModel } from '../policy/index.js';
import { initPolicyEngine } from './policy-engine.js';
import { addServePolicyOptions, registerPolicyCommands, servePolicyCommand } from '../policy/cli.js';

const program = new Command('parley')
  .description('Parley: RL for tool-using agents that talk to simulated users')
  .version('0.1.0')
  .exitOverride();
const serve = program.command('serve').description('Serve one Parley service over gRPC');
registerRunCommand(program);
registerEvalCommand(program);
registerPrepareCommand(program);
registerControllerCommands(program, serve);
registerSandboxCommands(program, serve);
registerBenchCommands(program);
registerRolloutServe(serve);
serve.addCommand(usersimCommand());
registerPolicyCommands(program);
registerEngineCommands(program);
registerLearnerServeCommand(serve);
registerCoordinatorServeCommand(serve);
addServePolicyOptions(serve.command('policy').description('Serve the Policy gRPC service (token-in-token-out rendering over a vLLM-compatible backend), and over NATS with --nats')).action(
  async (opts: Record<string, unknown>) => {
    const running = await servePolicyCommand(opts, {
      // The builtin model samples through the PyTorch engine's Sample RPC.
      backendFor: (c) => {
        if (c.backend !== 'trainer-engine' || !c.engineAddress) return undefined;
        const model = loadChatModel(c.modelDir);
        const trainer = connectTrainer(c.engineAddress);
        const init = process.env.PARLEY_ENGINE_INIT_FILE;
        const ready = init ? initPolicyEngine(trainer, init, c.modelDir) : undefined;
        return new EngineSamplerBackend(trainer, { stopTokenIds: model.encode('<|im_end|>'), ready });
      },
    });
    process.stderr.write(
      `policy serving gRPC on :${running.port}` +
        (running.bus ? ` and over NATS in run '${running.bus.run}'` : '') +
        (running.metricsPort ? `, metrics on :${running.metricsPort}/metrics` : '') +
        '; Ctrl-C to stop\n',
    );
  },
);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  if (e instanceof CliError || e instanceof ParleyError) {
    process.stderr.write(`parley: ${e.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`parley: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
