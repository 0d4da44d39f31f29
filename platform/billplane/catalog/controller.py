"""/v1/products and /v1/plans"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.auth import principal_of
from billplane.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor
from billplane.catalog.repository import PlanFilters, PlanRepository, ProductFilters, ProductRepository
from billplane.catalog.schemas import (
    Plan,
    PlanCreateBody,
    PlanUpdateBody,
    Product,
    ProductCreateBody,
    ProductUpdateBody,
)
from billplane.catalog.service import PlanService, ProductService
from billplane.db.mixins import MAX_ID
from billplane.sync.dependencies import sync_service_for


# The sync service is built only when an edit asks for it (a PATCH): reads and the other writes
# need neither it nor the principal dependency.
async def provide_product_service(
    request: Request[Any, Any, Any], tenant_session: NamedDependency[AsyncSession]
) -> ProductService:
    return ProductService(
        ProductRepository(session=tenant_session),
        lambda: sync_service_for(request, tenant_session, principal_of(request)),
    )


async def provide_plan_service(
    request: Request[Any, Any, Any], tenant_session: NamedDependency[AsyncSession]
) -> PlanService:
    return PlanService(
        PlanRepository(session=tenant_session),
        ProductRepository(session=tenant_session),
        lambda: sync_service_for(request, tenant_session, principal_of(request)),
    )


class ProductController(Controller):
    path = "/v1/products"
    tags = ["catalog"]
    security = [{"apiKey": []}]
    dependencies = {"products": Provide(provide_product_service)}

    @post("/", operation_id="createProduct", status_code=201)
    async def create_product(self, data: ProductCreateBody, products: NamedDependency[ProductService]) -> Product:
        """Create a product: what the tenant sells. Its prices are plans."""
        return Product.of(await products.create(data))

    @get("/{product_id:int}", operation_id="getProduct")
    async def get_product(self, product_id: FromPath[int], products: NamedDependency[ProductService]) -> Product:
        """One product by id; 404 if it does not exist or belongs to another tenant."""
        return Product.of(await products.get(product_id))

    @patch("/{product_id:int}", operation_id="updateProduct")
    async def update_product(
        self,
        product_id: FromPath[int],
        data: ProductUpdateBody,
        products: NamedDependency[ProductService],
    ) -> Product:
        """Change the fields sent. `active=false` archives the product: its plans keep working, no new ones.

        A change of `name`, `description` or `active` is mirrored to the provider accounts that have
        the product (`sync_status`).
        """
        return Product.of(await products.update(product_id, data))

    @post("/{product_id:int}/sync", operation_id="syncProduct", status_code=202)
    async def sync_product(self, product_id: FromPath[int], products: NamedDependency[ProductService]) -> Product:
        """Send the product as it is (name, description, active) to every provider account that has
        it again, now: after a failed mirror, say (`sync_status` `failed`). An account that does not
        have it gets it when a subscription first needs it there. Answers at once (202)."""
        return Product.of(await products.sync(product_id))

    @delete("/{product_id:int}", operation_id="deleteProduct", status_code=204)
    async def delete_product(self, product_id: FromPath[int], products: NamedDependency[ProductService]) -> None:
        """Delete a product that no plan names; otherwise 409: archive it instead."""
        await products.delete(product_id)

    @get("/", operation_id="listProducts")
    async def list_products(
        self,
        *,
        products: NamedDependency[ProductService],
        active: Annotated[bool | None, QueryParameter(description="Only active (true) or archived (false).")] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[Product]:
        """List products, oldest first, optionally only active or only archived ones."""
        rows, next_cursor = await products.page(ProductFilters(active), after=decode_cursor(cursor), limit=limit)
        return Page(data=[Product.of(row) for row in rows], next_cursor=next_cursor)


class PlanController(Controller):
    path = "/v1/plans"
    tags = ["catalog"]
    security = [{"apiKey": []}]
    dependencies = {"plans": Provide(provide_plan_service)}

    @post("/", operation_id="createPlan", status_code=201)
    async def create_plan(self, data: PlanCreateBody, plans: NamedDependency[PlanService]) -> Plan:
        """Create a plan (a price) for an active product.

        `flat` and `per_seat` take `amount`; `tiered` (graduated) and `volume` take `tiers`, ascending,
        the last one open-ended; `package` takes `amount` per `package_size` units; `metered` takes
        `amount` per unit and `usage_aggregation` (sum, max or last; sum by default). Every field at
        fault is named in `errors`. Money is never a JSON float: `1000.0` is refused.
        """
        return Plan.of(await plans.create(data))

    @get("/{plan_id:int}", operation_id="getPlan")
    async def get_plan(self, plan_id: FromPath[int], plans: NamedDependency[PlanService]) -> Plan:
        """One plan with its tiers and features; 404 if it does not exist or belongs to another tenant."""
        return Plan.of(await plans.get(plan_id))

    @patch("/{plan_id:int}", operation_id="updatePlan")
    async def update_plan(
        self,
        plan_id: FromPath[int],
        data: PlanUpdateBody,
        plans: NamedDependency[PlanService],
    ) -> Plan:
        """Change the fields sent. Price fields change only while no subscription uses the plan or is
        scheduled to move to it at its period's end (else 409: create a new plan instead); any change to
        them re-checks the whole price. `tiers` is replaced whole. Archiving (`active=false`), and
        making the plan active again, is mirrored to the provider accounts that have its price
        (`sync_status`).
        """
        return Plan.of(await plans.update(plan_id, data))

    @post("/{plan_id:int}/sync", operation_id="syncPlan", status_code=202)
    async def sync_plan(self, plan_id: FromPath[int], plans: NamedDependency[PlanService]) -> Plan:
        """Send the plan's price, active or archived as the plan is, to every provider account that has
        it again, now: after a failed mirror, say (`sync_status` `failed`). Answers at once (202)."""
        return Plan.of(await plans.sync(plan_id))

    @delete("/{plan_id:int}", operation_id="deletePlan", status_code=204)
    async def delete_plan(self, plan_id: FromPath[int], plans: NamedDependency[PlanService]) -> None:
        """Delete a plan no subscription (current or scheduled), invoice line or pending invoice item
        names; otherwise 409: archive it instead."""
        await plans.delete(plan_id)

    @get("/", operation_id="listPlans")
    async def list_plans(
        self,
        *,
        plans: NamedDependency[PlanService],
        product_id: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID, description="Plans of this product.")] = None,
        active: Annotated[bool | None, QueryParameter(description="Only active (true) or archived (false).")] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[Plan]:
        """List plans, oldest first, optionally of one product and only active or only archived ones."""
        filters = PlanFilters(product_id, active)
        rows, next_cursor = await plans.page(filters, after=decode_cursor(cursor), limit=limit)
        return Page(data=[Plan.of(row) for row in rows], next_cursor=next_cursor)
