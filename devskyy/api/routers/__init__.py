"""One router per area; each ``build(ctx)`` returns an ``APIRouter`` closing over the context."""
