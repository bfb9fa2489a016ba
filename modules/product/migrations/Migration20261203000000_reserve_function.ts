import { Migration } from '@mikro-orm/migrations';

/**
 * A reservation in one statement: `products.reserve_stock(id, product ids,
 * quantities)` claims the reservation id, takes every line's stock with a
 * conditional update (`stock >= quantity`) and records what it took — all or
 * nothing, as one autocommitted statement instead of a transaction of 3+N
 * round trips. A repeat of the id returns what the first call took (or
 * raises TK001 when it was released); a short line raises TK002 naming the
 * product, which rolls the whole statement back.
 */
export class Migration20261203000000_reserve_function extends Migration {
  override async up(): Promise<void> {
    this
      .addSql(`create function "products"."reserve_stock"("p_id" varchar, "p_products" varchar[], "p_quantities" integer[]) returns jsonb
language plpgsql as $$
declare
  "v_status" varchar;
  "v_lines" jsonb;
  "v_taken" jsonb := '[]'::jsonb;
  "v_name" varchar;
  "v_price" bigint;
begin
  insert into "products"."reservations" ("id", "status") values ("p_id", 'active') on conflict ("id") do nothing;
  if not found then
    select "status", "lines" into "v_status", "v_lines" from "products"."reservations" where "id" = "p_id";
    if "v_status" = 'released' then
      raise exception using errcode = 'TK001', message = 'reservation released';
    end if;
    return "v_lines";
  end if;
  for i in 1 .. coalesce(array_length("p_products", 1), 0) loop
    update "products"."products" set "stock" = "stock" - "p_quantities"[i], "updated_at" = now()
      where "id" = "p_products"[i] and "stock" >= "p_quantities"[i]
      returning "name", "price" into "v_name", "v_price";
    if not found then
      raise exception using errcode = 'TK002', message = 'short', detail = "p_products"[i];
    end if;
    "v_taken" := "v_taken" || jsonb_build_array(jsonb_build_object('productId', "p_products"[i], 'quantity', "p_quantities"[i], 'name', "v_name", 'unitPrice', "v_price"));
  end loop;
  update "products"."reservations" set "lines" = "v_taken" where "id" = "p_id";
  return "v_taken";
end $$;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop function if exists "products"."reserve_stock"(varchar, varchar[], integer[]);`);
  }
}
