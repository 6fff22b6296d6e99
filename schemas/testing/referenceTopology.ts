/**
 * The illustrative topology of protocol.md §3, shared by the projection and replay tests:
 * group 7 = GPU + HDMI audio (+ a hot-added USB-C function), group 9 = root port + xHCI (no ACS),
 * group 12 = a singleton NIC, group 15 = a USB controller with an RMRR, group 30 = three functions.
 */
export const GPU = '0000:01:00.0';
export const AUDIO = '0000:01:00.1';
export const USBC = '0000:01:00.2';
export const ROOT_PORT = '0000:00:1c.0';
export const XHCI = '0000:02:00.0';
export const NIC = '0000:03:00.0';
export const USB_RMRR = '0000:00:14.0';
export const DEV_A = '0000:07:00.0';
export const DEV_B = '0000:07:00.1';
export const DEV_C = '0000:07:00.2';
