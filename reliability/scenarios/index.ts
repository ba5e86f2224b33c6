import type { Scenario } from '../lib/scenario.js';
import { callers } from './callers.js';
import { churn } from './churn.js';
import { clusterFaults } from './cluster-faults.js';
import { connectRamp } from './connect-ramp.js';
import { goneMidAck } from './gone-mid-ack.js';
import { pushSteps } from './push-steps.js';
import { slowConsumers } from './slow-consumers.js';

/** In the order a run takes them: the single node's load first, its faults, then the cluster's. */
export const SCENARIOS: readonly Scenario[] = [connectRamp, pushSteps, churn, goneMidAck, callers, slowConsumers, clusterFaults];
