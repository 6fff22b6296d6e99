import type { RequestHandler } from 'express';
import type { Role } from '../../shared/config/config.js';
import type { TokenIdentity } from '../../shared/config/tokens.js';
import { sendProblem } from './problem.js';

declare module 'express-serve-static-core' {
  interface Request {
    identity?: TokenIdentity;
  }
}

/** `Authorization: Bearer <token>`; 401 without a valid token, 403 with the wrong role. admin implies every role. */
export const requireRole =
  (identify: (token: string) => TokenIdentity | undefined, role: Role): RequestHandler =>
  (req, res, next) => {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="iommutrail"');
      return sendProblem(res, 401, 'unauthorized', 'a bearer token is required (Authorization: Bearer <token>)');
    }
    const identity = identify(match[1]!);
    if (!identity) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="iommutrail", error="invalid_token"');
      return sendProblem(res, 401, 'unauthorized', 'unknown or revoked token');
    }
    if (!identity.roles.has(role) && !identity.roles.has('admin')) {
      return sendProblem(res, 403, 'forbidden', `token "${identity.name}" lacks the ${role} role`);
    }
    req.identity = identity;
    next();
  };
