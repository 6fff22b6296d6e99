/** the violation catalogue: one module per rule, listed here in their stable order */
import { accessBeforeBind } from './accessBeforeBind.js';
import { accessGrantedWithoutBind } from './accessGrantedWithoutBind.js';
import { attachDuringReset } from './attachDuringReset.js';
import { faultsAutoResponded } from './faultsAutoResponded.js';
import { kernelBindIntoUserGroup } from './kernelBindIntoUserGroup.js';
import { kernelDriverInUserGroup } from './kernelDriverInUserGroup.js';
import { legacyAndCdev } from './legacyAndCdev.js';
import { nestedParentForeign } from './nestedParentForeign.js';
import { passthroughRefusedGroupInUse } from './passthroughRefusedGroupInUse.js';
import { passthroughRefusedNotViable } from './passthroughRefusedNotViable.js';
import type { RuleDefinition } from './rule.js';
import { sequenceGap } from './sequenceGap.js';
import { sequenceLateArrival } from './sequenceLateArrival.js';
import { sequenceOutOfOrder } from './sequenceOutOfOrder.js';
import { splitDomain } from './splitDomain.js';
import { tenantMixingDefinition } from './tenantMixing.js';
import { translatedByUnattachedDomain } from './translatedByUnattachedDomain.js';
import { twoOwners } from './twoOwners.js';
import { unsafeInterrupts } from './unsafeInterrupts.js';
import { vdeviceForeignGroup } from './vdeviceForeignGroup.js';
import { veventLost } from './veventLost.js';

/** only the definition's fields (the modules add their conditions and messages) */
const definition = (r: RuleDefinition): RuleDefinition => ({
  id: r.id,
  severity: r.severity,
  title: r.title,
  harm: r.harm,
  reference: r.reference,
  guards: r.guards,
  opens: r.opens,
  closes: r.closes,
  lifecycle: r.lifecycle,
  transient: r.transient,
  impossibleUpstream: r.impossibleUpstream,
});

export const RULE_DEFINITIONS: readonly RuleDefinition[] = [
  kernelDriverInUserGroup,
  passthroughRefusedNotViable,
  passthroughRefusedGroupInUse,
  kernelBindIntoUserGroup,
  splitDomain,
  twoOwners,
  legacyAndCdev,
  translatedByUnattachedDomain,
  accessBeforeBind,
  accessGrantedWithoutBind,
  unsafeInterrupts,
  tenantMixingDefinition,
  sequenceGap,
  sequenceOutOfOrder,
  sequenceLateArrival,
  vdeviceForeignGroup,
  nestedParentForeign,
  faultsAutoResponded,
  veventLost,
  attachDuringReset,
].map(definition);
