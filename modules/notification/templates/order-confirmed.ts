import type { Template } from './template.ts';

export interface OrderConfirmedData {
  fullName: string;
  orderId: string;
  /** Amounts already formatted for the reader's locale and the shop currency. */
  items: { name: string; quantity: number; lineTotal: string }[];
  total: string;
}

const lines = (d: OrderConfirmedData) => d.items.map((i) => `- ${i.quantity} × ${i.name}: ${i.lineTotal}`).join('\n');

export const orderConfirmed: Template<OrderConfirmedData> = {
  id: (d) => ({
    subject: `Pesanan ${d.orderId.slice(0, 8)} dikonfirmasi — ${d.total}`,
    text: `Halo ${d.fullName},

Terima kasih! Pesanan Anda ${d.orderId} sudah kami konfirmasi:

${lines(d)}

Total: ${d.total}

Salam,
Tim toko`,
  }),
  en: (d) => ({
    subject: `Order ${d.orderId.slice(0, 8)} confirmed — ${d.total}`,
    text: `Hello ${d.fullName},

Thank you! We have confirmed your order ${d.orderId}:

${lines(d)}

Total: ${d.total}

Regards,
The toko team`,
  }),
};
