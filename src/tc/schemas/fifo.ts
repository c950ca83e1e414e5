/** pfifo / bfifo options: TCA_OPTIONS is a bare struct tc_fifo_qopt, not a nest. */
import { field, struct } from '../../netlink/index.js';

/** struct tc_fifo_qopt: limit in packets (pfifo) or bytes (bfifo). */
export const tcFifoQopt = struct('tc_fifo_qopt', [['limit', field.u32]] as const);
