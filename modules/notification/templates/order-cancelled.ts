import type { Template } from './template.ts';

export interface OrderCancelledData {
  fullName: string;
  orderId: string;
  total: string;
}

export const orderCancelled: Template<OrderCancelledData> = {
  id: (d) => ({
    subject: `Pesanan ${d.orderId.slice(0, 8)} dibatalkan`,
    text: `Halo ${d.fullName},

Pesanan Anda ${d.orderId} senilai ${d.total} telah dibatalkan.

Salam,
Tim toko`,
  }),
  en: (d) => ({
    subject: `Order ${d.orderId.slice(0, 8)} cancelled`,
    text: `Hello ${d.fullName},

Your order ${d.orderId} of ${d.total} has been cancelled.

Regards,
The toko team`,
  }),
};
