"""Applications: the report's scenarios, each composing the layers below (apps never import each other)."""
