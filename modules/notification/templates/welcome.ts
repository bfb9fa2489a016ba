import type { Template } from './template.ts';

export interface WelcomeData {
  fullName: string;
  username: string;
}

export const welcome: Template<WelcomeData> = {
  id: (d) => ({
    subject: 'Selamat datang di toko!',
    text: `Halo ${d.fullName},

Akun Anda (${d.username}) sudah aktif. Selamat berbelanja!

Salam,
Tim toko`,
  }),
  en: (d) => ({
    subject: 'Welcome to toko!',
    text: `Hello ${d.fullName},

Your account (${d.username}) is ready. Happy shopping!

Regards,
The toko team`,
  }),
};
