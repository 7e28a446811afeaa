/** The smallest application: one deployment answering every HTTP request at its route. */
import { bind, deployment, type ServeRequest } from 'rayline';

@deployment({ numReplicas: 2 })
class HelloModel {
  __call__(request: ServeRequest) {
    return { message: 'Hello from Rayline!', path: request.path };
  }
}

export const app = bind(HelloModel);
