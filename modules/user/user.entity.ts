import { EntitySchema } from '@mikro-orm/core';
import type { Role } from '../../kit/auth.ts';

export interface User {
  id: string;
  email: string;
  username: string;
  passwordHash: string;
  fullName: string;
  role: Role;
  isActive: boolean;
  isVerified: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export const UserEntity = new EntitySchema<User>({
  name: 'User',
  tableName: 'users',
  properties: {
    id: { type: 'uuid', primary: true },
    email: { type: 'string', length: 254, unique: 'users_email_unique' },
    username: { type: 'string', length: 32, unique: 'users_username_unique' },
    passwordHash: { type: 'string', length: 100, lazy: true },
    fullName: { type: 'string', length: 200 },
    role: { type: 'string', length: 16 },
    isActive: { type: 'boolean' },
    isVerified: { type: 'boolean' },
    createdAt: { type: 'Date', columnType: 'timestamptz' },
    updatedAt: { type: 'Date', columnType: 'timestamptz' },
  },
});
