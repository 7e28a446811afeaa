/**
 * Child process that imports an application's module and describes its graph, so that user code
 * never runs inside the controller. Reads one request from IPC, answers, exits.
 */
import { RaylineError } from '../../errors.ts';
import { walkApplication } from '../../serve/graph.ts';
import { loadApplication } from '../replica/load-app.ts';
import type { BuildReply, BuildRequest } from './builder.ts';

process.once('message', async (request: BuildRequest) => {
  let reply: BuildReply;
  try {
    const root = await loadApplication(request.importPath, request.workingDir, request.args);
    const nodes = walkApplication(root);
    reply = {
      ok: true,
      deployments: nodes.map((n) => ({
        name: n.name,
        isIngress: n.isIngress,
        codeOptions: n.deployment.config,
      })),
    };
  } catch (error) {
    const e = error as Error;
    reply = {
      ok: false,
      code: error instanceof RaylineError ? error.code : 'RL_IMPORT_FAILED',
      message: e.message,
    };
  }
  process.send?.(reply, () => process.exit(0));
});
