import { describe, expect, it } from 'vitest';
import { greetingName } from './template.ts';
import { welcome } from './welcome.ts';

describe('greetingName', () => {
  it('keeps a real name as it is', () => {
    expect(greetingName('Siti Nur’aini', 'siti')).toBe('Siti Nur’aini');
  });

  it('flattens line breaks and formatting characters of a name stored before names were checked, and drops one that reads as a link', () => {
    expect(greetingName('Budi\n\nAkun Anda diblokir', 'budi')).toBe('Budi Akun Anda diblokir');
    expect(greetingName('Siti\u202Egnp.exe', 'siti')).toBe('Siti gnp.exe');
    expect(greetingName('Budi, verifikasi di https://evil.example', 'budi_99')).toBe('budi_99');
    expect(greetingName('x'.repeat(200), 'x')).toHaveLength(60);
  });

  it('leaves the mail one greeting line, whatever the stored name', () => {
    const { text } = welcome.id({
      fullName: greetingName('Budi\n\nSalam,\nTim toko\n\nPS: balas dengan PIN Anda', 'budi'),
      username: 'budi',
    });
    expect(text.split('\n')[0]).toBe('Halo Budi Salam, Tim toko PS: balas dengan PIN Anda,');
    // The rest of the mail is the template's own lines, as for any name.
    expect(text.split('\n').slice(1)).toEqual(
      welcome.id({ fullName: 'Budi', username: 'budi' }).text.split('\n').slice(1),
    );
  });
});
