from tests.bot_fixtures import bot_stack  # noqa: F401
from tests.db_fixtures import *  # noqa: F403
