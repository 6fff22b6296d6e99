import { isVfioDriverName } from '../../../schemas/index.js';
import { fail } from '../kernel.js';
import { releaseHas } from '../releases.js';
import type { ModelState, Transition } from '../types.js';

/**
 * The VF token on VFIO_DEVICE_BIND_IOMMUFD (6.17): vfio_df_ioctl_bind_iommufd → vfio_df_check_token →
 * vfio_pci_core_match_token_uuid → vfio_pci_validate_vf_token (drivers/vfio/pci/vfio_pci_core.c). Before
 * 6.17 the cdev path made no token check, and the flag is an unknown bit (-EINVAL with the argument checks).
 * The catalogue records only whether a token was passed (the UUID is a secret), so a wrong token's -EACCES
 * is the recorded answer the model cannot re-derive: it takes a passed token as the PF's.
 */

/** before 6.17: VFIO_DEVICE_BIND_FLAG_TOKEN is an unknown flag (`bind.flags` → -EINVAL, with argsz and iommufd < 0) */
export const tokenFlagUnknown = (state: ModelState, vfToken: boolean | undefined): boolean => vfToken === true && !releaseHas(state.caps.kernelRelease, 'vfToken');

/** a VF of `pf` is opened by a vfio user (vfio_pci_vf_token_user_add: a bound cdev fd or a group-path fd) */
const vfInUse = (state: ModelState, pf: string): boolean => {
  for (const fd of state.fds.values()) if ((fd.via === 'group' || fd.ictx !== null) && state.devices.get(fd.device)?.physfn === pf) return true;
  return false;
};

/** the token check after the group-path and already-bound checks, before the iommufd is looked up; null: it passes */
export const checkVfToken = (state: ModelState, device: string, vfToken: boolean | undefined): Transition | null => {
  if (!releaseHas(state.caps.kernelRelease, 'vfToken')) return null;
  const token = vfToken === true;
  const d = state.devices.get(device);
  if (d?.physfn !== undefined) {
    // `pf_vdev = vdev->sriov_pf_core_dev`: set while the PF is bound to a vfio-pci core driver
    const pf = state.devices.get(d.physfn);
    const pfVfio = pf !== undefined && pf.driver !== null && isVfioDriverName(pf.driver);
    if (!pfVfio) return token ? fail('upstream.bind.vf-token-pf-not-vfio') : null;
    // "VF token required to access device"
    return token ? null : fail('upstream.bind.vf-token-required');
  }
  if (d?.sriovPf === true) {
    // `else if (vdev->vf_token)`: a PF on vfio-pci whose VFs have vfio users (vf_token->users, counted when a VF's
    // device is opened: a bound cdev fd or a group-path fd) must prove it shares their token; with no user a
    // passed token only sets it
    return !token && vfInUse(state, device) ? fail('upstream.bind.pf-vf-token-required') : null;
  }
  return token ? fail('upstream.bind.vf-token-not-sriov') : null;
};
