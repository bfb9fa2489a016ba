/** The kernel's name for the kit's outage check (the HTTP layer and the outbox relay use it). */
export { isStoreOutage } from '../../kit/outage.ts';
