"""Commerce agents: e-commerce (``validate_order``), inventory (``reserve_inventory``,
``release_inventory``) and financial (``process_payment``, ``record_transaction``).

They work on the commerce tables of the devskyy store through the ``CommerceStore``
Protocol (``devskyy.adapters.commerce_twin``: the SQL store in production, the in-memory
twin in tests) with the pure rules of ``devskyy.core.commerce``,
and charge through the ``PaymentGateway`` seam of ``gateway`` (offline: the sandbox).
The ``ecommerce_order`` workflow (``manifests/workflows/ecommerce_order.yaml``) chains
them, with ``release_inventory`` as the compensation of a failed payment.
"""

from __future__ import annotations

from devskyy.agents.commerce.ecommerce import EcommerceAgent
from devskyy.agents.commerce.financial import FinancialAgent
from devskyy.agents.commerce.gateway import PaymentGateway, SandboxGateway
from devskyy.agents.commerce.inventory import InventoryAgent

__all__ = ["EcommerceAgent", "FinancialAgent", "InventoryAgent", "PaymentGateway", "SandboxGateway"]
