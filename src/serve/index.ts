/** The programming model: everything user code imports from `rayline`. */
export { type BatchOptions, batch } from './batch.ts';
export { getRequestContext, type RequestContext } from './context.ts';
export { Application, type BindArgs, bind, Deployment, deployment } from './deployment.ts';
export {
  createHandle,
  type DeploymentHandle,
  type DeploymentResponse,
  type DeploymentResponseGenerator,
  type HandleOptions,
} from './handle.ts';
export { type ResponseInit, response, ServeRequest, ServeResponse } from './request.ts';
