from . import main
from . import kannel
